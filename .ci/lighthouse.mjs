// One Lighthouse 12 run with a real session cookie in the browser (an extra Cookie header does
// not reach EventSource, so the live stream would answer 401 and log console errors):
//   node .ci/lighthouse.mjs URL mobile|desktop SESSION REPORT.json
// Lighthouse, chrome-launcher and puppeteer-core come from the global npm install of lighthouse.
import { execSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [url, preset, session, report] = process.argv.slice(2);
const root = path.join(execSync('npm root -g').toString().trim(), 'lighthouse');
const load = (p) => import(pathToFileURL(path.join(root, p)).href);
const { default: lighthouse, desktopConfig } = await load('core/index.js');
const chromeLauncher = await load('node_modules/chrome-launcher/dist/index.js');
const { default: puppeteer } = await load('node_modules/puppeteer-core/lib/esm/puppeteer/puppeteer-core.js');

const chrome = await chromeLauncher.launch({
  chromePath: process.env.CHROME_PATH,
  chromeFlags: ['--headless=new', '--no-sandbox'],
});
try {
  const browser = await puppeteer.connect({ browserURL: `http://127.0.0.1:${chrome.port}` });
  const page = await browser.newPage();
  const { origin, hostname } = new URL(url);
  await browser.setCookie({ name: 'session', value: session, domain: hostname, path: '/', httpOnly: true, sameSite: 'Lax' });
  void origin;
  const flags = { output: 'json', logLevel: 'error', disableStorageReset: true,
    onlyCategories: ['performance', 'accessibility', 'best-practices', 'seo'] };
  const result = await lighthouse(url, flags, preset === 'desktop' ? desktopConfig : undefined, page);
  writeFileSync(report, result.report);
  await browser.disconnect();
} finally {
  chrome.kill();
}
