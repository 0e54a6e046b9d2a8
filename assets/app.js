// Market's keyboard model and dialogs. One file, no inline code (our CSP forbids it), and
// nothing here is needed for the page to work: without it every form still posts.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const shortcutsOn = () =>
    document.querySelector('meta[name="keyboard-shortcuts-preference"]')?.content !== 'no_character_key';
  const items = () => [...document.querySelectorAll('.js-item')]; // market rows, then owned rows
  const editable = (t) =>
    t instanceof Element && t.closest('input,textarea,select,[contenteditable]:not([contenteditable="false"])');
  const money = (n) => (n < 0 ? '-$' : '$') + Math.abs(n).toLocaleString('en-US');
  const budget = () => Number(($('budget')?.textContent || '').replace(/[^0-9]/g, ''));

  // Single-key shortcuts: the switch in the shortcuts dialog, remembered in a cookie.
  function setShortcuts(on) {
    document.cookie = 'kbd=' + (on ? 'on' : 'off') + '; Path=/; Max-Age=31536000; SameSite=Lax';
    const meta = document.querySelector('meta[name="keyboard-shortcuts-preference"]');
    if (meta) meta.content = on ? 'all' : 'no_character_key';
    const q = $('q');
    if (q) on ? q.setAttribute('aria-keyshortcuts', '/') : q.removeAttribute('aria-keyshortcuts');
    const note = $('char-keys-off');
    if (note) note.hidden = on;
  }

  function openShortcuts() {
    const d = $('shortcuts');
    if (d && !d.open) showModal(d);
  }

  // What works only with this script (.js-only) shows once it runs; <html> outlives the body
  // swaps of history restores.
  document.documentElement.classList.add('js');

  // Each dialog remembers what had focus when it opened, to return there if the browser can't.
  const openers = new WeakMap();
  function showModal(dialog) {
    openers.set(dialog, document.activeElement);
    dialog.showModal();
  }

  // The trade waiting for confirmation (its button and htmx's issueRequest), and the trades on
  // their way: for each button, the change it will make to the budget and where focus went.
  let pending = null;
  const trades = new Map();
  let typed = null; // the character of the shortcut just handled, until its keypress or keyup

  // The budget once the trades on their way are done: what a new confirmation must count on.
  function budgetAfterTrades() {
    let b = budget();
    for (const t of trades.values()) b += t.delta;
    return b;
  }

  // An item can take focus unless its own trade is on its way (its button is disabled).
  const ready = (button) => !!button && !button.disabled && !trades.has(button);

  // Where focus goes when button's row leaves its list: the next ready item of the same list,
  // else the previous one, else the list's heading (see restingPlace).
  function focusAfter(button) {
    const row = button.closest('tr');
    for (const step of ['nextElementSibling', 'previousElementSibling']) {
      for (let r = row?.[step]; r; r = r[step]) {
        const b = r.querySelector('.js-item');
        if (ready(b)) return b;
      }
    }
    return restingPlace(button);
  }

  // Where focus rests when no item near it can take it: on an item's page its trade button,
  // else the heading of the list it was in (or of the page). Never the search box, where the
  // next shortcut (?, j) would be typed as text.
  function restingPlace(from) {
    const trade = $('item-trade');
    if (trade) return trade.querySelector('.js-item') || document.querySelector('main h1');
    const heading = (from instanceof Element && from.closest('section')?.querySelector('h2')) || document.querySelector('main h1');
    if (heading && !heading.hasAttribute('tabindex')) heading.setAttribute('tabindex', '-1');
    return heading;
  }

  // What the buyer can afford, from the budget on the page: the Buy button of an item above it
  // keeps its place and focus, marked aria-disabled and described by what is missing ("$410
  // more than you have"); the summary of what the user owns adds up. It follows every change of
  // the page (a trade's answer, a live event after a grant or a trade in another tab), and
  // writes only what changed, so that it settles at once.
  const setText = (el, text) => { if (el && el.textContent !== text) el.textContent = text; };
  // cue marks one Buy button (in the page, or in a row not yet in it) for a budget of b.
  function cue(button, b) {
    const short = Number(button.dataset.price) - b;
    const row = button.closest('tr');
    setText(row ? row.querySelector('.short') : $('short-' + button.value), short > 0 ? `${money(short)} more than you have` : '');
    if (short > 0 && button.getAttribute('aria-disabled') !== 'true') button.setAttribute('aria-disabled', 'true');
    else if (short <= 0 && button.hasAttribute('aria-disabled')) button.removeAttribute('aria-disabled');
  }
  function affordability() {
    if (!$('budget')) return;
    const b = budget();
    for (const button of document.querySelectorAll('.js-item[data-action="buy"]')) {
      if (!trades.has(button)) cue(button, b); // busy: answered() looks again
    }
    if (!$('owned-summary')) return;
    const owned = [...document.querySelectorAll('#owned-rows .js-item')];
    setText($('owned-count'), owned.length === 1 ? '1 item' : `${owned.length} items`);
    setText($('owned-value'), money(owned.reduce((v, o) => v + Number(o.dataset.price), 0)));
    setText($('owned-budget'), money(b));
  }
  new MutationObserver(affordability).observe(document.documentElement, { childList: true, subtree: true, characterData: true });
  affordability();

  // An item above the budget explains itself instead of asking to confirm.
  function explainShort(button) {
    const short = $('short-' + button.value)?.textContent || 'more than you have';
    const msg = document.createElement('p');
    msg.textContent = `${button.dataset.name} costs ${money(Number(button.dataset.price))}: ${short}.`;
    if ($('flash')) $('flash').textContent = '';
    $('flash-alert')?.replaceChildren(msg);
  }

  function askToConfirm(button, issueRequest) {
    const dialog = $('confirm');
    if (!dialog) return send(button, issueRequest);
    const selling = button.dataset.action === 'sell';
    const price = Number(button.dataset.price);
    const now = budgetAfterTrades();
    const after = now + (selling ? price : -price);
    $('confirm-title').textContent = (selling ? 'Sell ' : 'Buy ') + button.dataset.name + '?';
    $('confirm-desc').textContent = selling
      ? `You get ${money(price)} back. Your budget will be ${money(after)}.`
      : after < 0
        ? `It costs ${money(price)}, more than your budget of ${money(now)}.`
        : `It costs ${money(price)}. Your budget will be ${money(after)}.`;
    $('confirm-detail').textContent = button.dataset.description || '';
    $('confirm-ok').textContent = (selling ? 'Sell for ' : 'Buy for ') + money(price);
    $('confirm-ok').disabled = false;
    if ($('confirm-gone')) $('confirm-gone').textContent = '';
    pending = { button, issueRequest };
    dialog.returnValue = '';
    showModal(dialog);
    $('confirm-ok').focus();
  }

  // The new button of an item confirmed a moment ago, whose row search results replaced.
  let alreadyConfirmed = null;

  document.addEventListener('htmx:confirm', (e) => {
    const button = e.detail.elt;
    if (!(button instanceof HTMLElement) || !button.classList.contains('js-item')) return;
    e.preventDefault();
    // Already on its way: a second confirmation would only trade a row that is about to move.
    if (trades.has(button)) return;
    if (button.getAttribute('aria-disabled') === 'true') return explainShort(button);
    if (button === alreadyConfirmed) {
      alreadyConfirmed = null;
      send(button, e.detail.issueRequest);
    } else {
      askToConfirm(button, e.detail.issueRequest);
    }
  });

  // Confirming sends the trade at once, in the same task as the key or click: the dialog's close
  // event comes later, after the next key, which could already have opened it again.
  function confirmTrade(dialog) {
    const p = pending;
    pending = null;
    dialog.close('confirm');
    if (!p) return;
    if (p.button.isConnected) return send(p.button, p.issueRequest);
    // Search results replaced the rows while the dialog was open: trade through the item's new
    // button, or say that nothing happened if the item is no longer on screen.
    const again = document.getElementById(p.button.id);
    if (again?.classList.contains('js-item')) {
      alreadyConfirmed = again;
      again.click();
      alreadyConfirmed = null; // used by now, or never to be
      return;
    }
    restingPlace(p.button)?.focus();
    const alert = $('flash-alert');
    if (alert) {
      const msg = document.createElement('p');
      msg.textContent = `The list changed before you confirmed: ${p.button.dataset.name} was not traded. Try again.`;
      alert.replaceChildren(msg);
    }
  }

  // Send a confirmed trade. Its button is disabled until the answer, so focus moves on to the
  // next item now, where it will be once the row has gone (a refusal brings it back). The answer
  // is heard on the button itself: new search results may have taken it out of the page, and
  // htmx then tells no ancestor.
  function send(button, issueRequest) {
    const price = Number(button.dataset.price);
    const trade = { delta: button.dataset.action === 'sell' ? price : -price, sent: false, focus: null, text: '' };
    trades.set(button, trade);
    button.addEventListener('htmx:afterRequest', () => answered(button, trade), { once: true });
    issueRequest(true); // htmx:beforeRequest marks it sent, within this call
    if (!trade.sent) {
      trades.delete(button);
      return;
    }
    if (document.activeElement === button || document.activeElement === document.body) {
      trade.focus = focusAfter(button);
      trade.focus?.focus();
      trade.text = trade.focus?.value; // the search box's text, to tell if the user types there
    }
  }

  // Before a trade: clear both live regions, so the same message is announced again, and mark
  // the button busy until the answer comes.
  document.addEventListener('htmx:beforeRequest', (e) => {
    const elt = e.detail.elt;
    if (elt?.classList?.contains('js-details')) detailsWanted = true;
    const trade = trades.get(elt);
    if (!trade) return;
    trade.sent = true;
    for (const id of ['flash', 'flash-alert']) if ($(id)) $(id).textContent = '';
    elt.setAttribute('aria-disabled', 'true'); // htmx disables it too; this names the busy state
  });

  // After a trade's answer, or its failure (htmx fires afterRequest in the same task as the swap
  // and the settle): a sold item takes its place in the market, and focus stays on the item it
  // went to, or returns to the button of a refused trade; never <body>. Focus the user has
  // taken elsewhere stays there, and so does focus in the search box once the user types.
  function answered(button, trade) {
    trades.delete(button);
    button.removeAttribute('aria-disabled');
    affordability();
    const returned = button.dataset.action === 'sell' && $('item-' + button.value);
    if (returned && returned.parentElement?.id === 'item-rows') placeReturned(returned);
    const active = document.activeElement;
    const lost = !active || active === document.body || !active.isConnected;
    if (!lost && (active !== trade.focus || active.value !== trade.text)) return;
    if (button.isConnected) button.focus();
    else if (lost) (ready(trade.focus) && trade.focus.isConnected ? trade.focus : restingPlace(trade.focus))?.focus();
  }

  // The market's order, as the server sorts it (SQLite's NOCASE folds ASCII letters only).
  const fold = (s) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
  function compareRows(a, b, sort) {
    const x = a.querySelector('.js-item').dataset, y = b.querySelector('.js-item').dataset;
    const byName = fold(x.name) < fold(y.name) ? -1 : fold(x.name) > fold(y.name) ? 1 : 0;
    const byID = Number(a.id.slice(5)) - Number(b.id.slice(5));
    const byPrice = Number(x.price) - Number(y.price);
    switch (sort) {
      case '-name': return -(byName || byID);
      case 'price': return byPrice || byName || byID;
      case '-price': return -(byPrice || byName || byID);
      default: return byName || byID;
    }
  }

  // A sold item comes back to the market at the end of the list: put it where the list's order
  // says, or take it out when the search or the page on screen would not show it.
  function placeReturned(row) {
    const params = new URLSearchParams(location.search);
    const q = fold((params.get('q') || '').trim());
    const data = row.querySelector('.js-item').dataset;
    if (q && !fold(data.name).includes(q) && !fold(data.description || '').includes(q)) {
      row.remove();
      return;
    }
    const others = [...row.parentElement.rows].filter((r) => r !== row);
    const next = others.find((r) => compareRows(row, r, params.get('sort')) < 0);
    if (next === others[0] && next && document.querySelector('#pager a[rel="prev"]')) row.remove(); // an earlier page's
    else if (next) next.before(row);
    else if (document.querySelector('#pager a[rel="next"]')) row.remove(); // a later page's
  }

  // Never push the address already shown (a search for what is on screen, a repeated Enter):
  // Back would seem to do nothing. htmx reads the type after this event.
  document.addEventListener('htmx:beforeHistoryUpdate', (e) => {
    const h = e.detail.history;
    if (h?.type === 'push' && new URL(h.path, location.href).href === location.href) h.type = 'replace';
  });

  // A network failure would otherwise leave the user with nothing.
  document.addEventListener('htmx:sendError', () => {
    const alert = $('flash-alert');
    if (alert) {
      const p = document.createElement('p');
      p.textContent = 'The market could not be reached. Check your connection and try again.';
      alert.replaceChildren(p);
    }
  });

  // Swaps of search results and item details. A search typed before a trade, whose answer
  // comes after the trade's, must not talk over the trade: its rows land, but #flash keeps the
  // trade's message. New results replace the rows, and the item that had focus with them (a key
  // pressed before the debounced search answered): focus moves to the first result, not <body>.
  let lastSearchEdit = 0;
  let lastTradeAnswer = 0;
  let quietSearch = false;
  let focusInResults = false;
  let detailsWanted = false; // item details asked for, and not dismissed with Escape since
  for (const type of ['input', 'change', 'submit']) {
    document.addEventListener(type, (e) => {
      if (e.target instanceof Element && e.target.closest('search')) lastSearchEdit = performance.now();
    }, true);
  }
  document.addEventListener('htmx:beforeSwap', (e) => {
    if (trades.has(e.detail.requestConfig?.elt)) lastTradeAnswer = performance.now();
    const results = e.detail.target?.id === 'item-rows';
    quietSearch = results && lastSearchEdit < lastTradeAnswer;
    focusInResults = results && !!document.activeElement?.closest('#item-rows');
  });
  document.addEventListener('htmx:oobBeforeSwap', (e) => {
    if (quietSearch && ['flash', 'flash-alert'].includes(e.detail.target?.id)) e.detail.shouldSwap = false;
  });

  document.addEventListener('htmx:afterSwap', (e) => {
    const target = e.detail.target;
    if (target?.id === 'item-rows' && focusInResults) {
      focusInResults = false;
      const active = document.activeElement;
      if (!active || active === document.body || !active.isConnected) (target.querySelector('.js-item') || restingPlace(target))?.focus();
    }
    // Item details open in a dialog once htmx has put them in place, unless Escape came first.
    if (target?.id === 'item-dialog-body' && detailsWanted && !document.querySelector('dialog[open]')) {
      const d = $('item-dialog');
      if (d && !d.open) showModal(d);
    }
  });

  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (e.key === 'Escape' && !document.querySelector('dialog[open]')) detailsWanted = false; // details on their way: not now
    // Escape leaves the search box for the list, its results on screen, for j and k to walk (a
    // search box would otherwise clear itself and bring every item back).
    if (e.key === 'Escape' && e.target === $('q')) {
      e.preventDefault();
      const first = [...document.querySelectorAll('#item-rows .js-item, #admin-item-rows a')].find(ready);
      if (first) first.focus();
      else if ($('item-rows')) restingPlace($('item-rows'))?.focus();
      else e.target.blur();
      return;
    }
    if (document.querySelector('dialog[open]') || editable(e.target)) return;
    // The current item: the focused button, or the button of the row that holds focus.
    const list = items();
    const row = document.activeElement?.closest('tr');
    const i = list.findIndex((b) => b === document.activeElement || (row && b.closest('tr') === row));
    const arrow = e.key === 'ArrowDown' || e.key === 'ArrowUp';
    const nav = arrow ? (i >= 0 ? e.key : null) : shortcutsOn() && (e.key === 'j' || e.key === 'k') ? e.key : null;
    if (nav) {
      // Items whose trade is on their way are disabled: step over them.
      const step = nav === 'ArrowDown' || nav === 'j' ? 1 : -1;
      let n = i < 0 && step > 0 ? 0 : i + step;
      while (list[n] && !ready(list[n])) n += step;
      if (list[n]) list[n].focus();
      e.preventDefault();
      return;
    }
    if (!shortcutsOn()) return;
    const active = document.activeElement;
    if (e.key === 's' && active instanceof HTMLElement && active.dataset.action === 'sell') {
      active.click();
    } else if (e.key === '/' && $('q')) {
      $('q').focus();
    } else if (e.key === '?') {
      openShortcuts();
    } else {
      return;
    }
    e.preventDefault();
    typed = e.key;
  });

  // Some keyboards, and automation such as CDP's char events, deliver a key's character as a
  // keypress of its own after the keydown: "/" must not be typed into the box it focused.
  document.addEventListener('keypress', (e) => {
    if (typed !== null && e.key === typed) e.preventDefault();
    typed = null;
  }, true);
  document.addEventListener('keyup', () => { typed = null; }, true);

  // The item dialog's Buy or Sell back hands over to the item's own button in the list, which
  // asks to confirm (or explains) as usual; an item not on this page of the list trades from
  // its own page.
  function viaRow(proxy) {
    const button = $(proxy.dataset.rowButton);
    const dialog = proxy.closest('dialog');
    if (!button) {
      location.assign('/items/' + proxy.dataset.rowButton.replace(/^\D+/, ''));
      return;
    }
    openers.set(dialog, button);
    dialog?.close();
    button.focus();
    button.click();
  }

  // Dialogs, the shortcuts button and the switch are handled from the document: a history
  // restore swaps the whole body, and listeners on the old elements would be gone with them.
  document.addEventListener('click', (e) => {
    if (!(e.target instanceof Element)) return;
    if (e.target.closest('#shortcuts-open')) openShortcuts();
    else if (e.target.closest('.js-via-row')) viaRow(e.target.closest('.js-via-row'));
    else e.target.closest('dialog .js-close')?.closest('dialog')?.close();
  });
  document.addEventListener('change', (e) => {
    if (e.target instanceof HTMLInputElement && e.target.id === 'char-keys') setShortcuts(e.target.checked);
  });
  document.addEventListener('submit', (e) => {
    const dialog = e.target instanceof Element && e.target.closest('dialog#confirm');
    if (!dialog || e.submitter?.value !== 'confirm') return; // Cancel closes it natively
    e.preventDefault();
    // A key can reach the confirm button of a dialog closed a moment ago, before focus leaves it.
    if (dialog.open) confirmTrade(dialog);
  });
  // Escape forgets the trade at once (the close event comes a task later).
  document.addEventListener('cancel', (e) => {
    if (e.target instanceof HTMLDialogElement && e.target.id === 'confirm') pending = null;
  }, true);
  // Escape or Cancel: the trade is forgotten, and focus returns natively to the element that
  // opened the dialog. If new search results took that element away, focus goes to the same
  // item among them, else to the first item, else to the search box; never to <body>.
  // close does not bubble; the capture phase still sees it.
  document.addEventListener('close', (e) => {
    const dialog = e.target;
    if (!(dialog instanceof HTMLDialogElement) || dialog.open) return;
    if (dialog.id === 'confirm') pending = null;
    // When the opener has left the page, Chromium leaves focus in the closed dialog and drops it
    // to <body> some time later: take it now, and look again after.
    const refocus = () => {
      const active = document.activeElement;
      const lost = !active || active === document.body || !active.isConnected || !!active.closest('dialog:not([open])');
      if (dialog.open || !lost) return;
      const opener = openers.get(dialog);
      if (opener === document.body) return; // opened from nowhere in particular: back to nowhere
      (opener?.isConnected ? opener : (opener?.id && $(opener.id)) || items()[0] || restingPlace(opener))?.focus();
    };
    refocus();
    setTimeout(refocus);
  }, true);
  // A page brought back from the browser's back/forward cache shows the budget and the items as
  // they were when it was left: load them as they are now.
  window.addEventListener('pageshow', (e) => {
    if (e.persisted) location.reload();
  });
  // A held Enter repeats: never let the repeat confirm a trade.
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.repeat && e.target instanceof Element && e.target.closest('dialog')) e.preventDefault();
  }, true);

  // Live updates (GET /market/events through htmx's SSE extension, into the hidden #live). Each
  // event swaps the rows of the page, the count and, after the user's own trades in another tab,
  // their items and budget. Before it lands: where focus is, and the rows around it, so that a
  // row that leaves gives focus to the next one, as after the user's own trade.
  let liveFocus = null; // {dialog: bool, ids: [the focused item, then its neighbours, nearest first]}
  function neighbours(button) {
    const ids = [button.id];
    const row = button.closest('tr');
    for (const step of ['nextElementSibling', 'previousElementSibling']) {
      for (let r = row?.[step]; r; r = r[step]) {
        const b = r.querySelector('.js-item');
        if (b?.id) ids.push(b.id);
      }
    }
    return ids;
  }
  let liveSwap = false; // a live event is being swapped in (synchronously, until htmx:sseMessage)
  document.addEventListener('htmx:sseBeforeMessage', () => {
    liveSwap = true;
    const a = document.activeElement;
    liveFocus = null;
    if (pending && $('confirm')?.open) liveFocus = { dialog: true, ids: neighbours(pending.button) };
    else if (a instanceof HTMLElement && a.classList.contains('js-item')) liveFocus = { dialog: false, ids: neighbours(a) };
  });

  // Rows a trade's answer adds that a live update has already put in place.
  // A live update changes only the rows that changed: the rows that stay are the same elements,
  // so focus, a disabled button of a trade on its way and the opener of an open dialog stay
  // with them. The market's rows take the server's order; the user's items only lose rows and
  // gain new ones at the end, as a trade in this tab does, so they never reorder under focus.
  // A row whose trade this tab has sent stays until the trade's own answer moves it: the stream
  // can be faster than the answer, and htmx drops the answer of a button no longer on the page.
  const inFlight = (row) => !!trades.get(row?.querySelector?.('.js-item'))?.sent;
  function patchRows(target, rows, ordered) {
    // Rows come without the viewer's cues (one rendering serves many viewers): add them first,
    // so that a row that did not change compares equal and keeps its button, and focus.
    if ($('budget')) for (const r of rows) for (const b of r.querySelectorAll('.js-item[data-action="buy"]')) cue(b, budget());
    const keep = new Set(rows.map((r) => r.id));
    for (const r of [...target.rows]) if (!keep.has(r.id) && !inFlight(r)) r.remove();
    let ref = target.firstElementChild;
    for (const r of rows) {
      const old = document.getElementById(r.id);
      if (old && old.parentElement === target) {
        // A row an admin edited (its name, price...) takes the new content; focus returns by id.
        if (!inFlight(old) && old.innerHTML !== r.innerHTML) htmx.process((old.innerHTML = r.innerHTML, old));
        if (!ordered) continue;
        if (old === ref) ref = ref.nextElementSibling;
        else target.insertBefore(old, ref);
        continue;
      }
      if (inFlight(old)) continue; // its own trade's answer moves it
      old?.remove(); // in the other list: it moved here
      if (ordered) target.insertBefore(r, ref);
      else target.append(r);
      htmx.process(r);
    }
  }
  document.addEventListener('htmx:oobBeforeSwap', (e) => {
    const target = e.detail.target;
    if (!liveSwap || !e.detail.fragment?.querySelectorAll) return;
    if (['item-rows', 'owned-rows'].includes(target?.id)) {
      e.detail.shouldSwap = false;
      patchRows(target, [...e.detail.fragment.querySelectorAll('tr[id]')], target.id === 'item-rows');
      return;
    }
    if (target?.tagName !== 'TR') return;
    // Rows of the market (removed, or new ones placed beside them): never a row of the user's
    // items of the same id, and a new row a trade of this tab has already put in place is
    // not added twice.
    if (target.parentElement?.id !== 'item-rows' || inFlight(target)) {
      e.detail.shouldSwap = false;
      return;
    }
    for (const row of e.detail.fragment.querySelectorAll('tr[id]')) {
      const old = document.getElementById(row.id);
      if (old?.parentElement?.id === 'item-rows') row.remove();
      else old?.remove();
    }
  });
  document.addEventListener('htmx:oobBeforeSwap', (e) => {
    if (liveSwap) return;
    const target = e.detail.target;
    if (!['item-rows', 'owned-rows'].includes(target?.id) || !e.detail.fragment?.querySelectorAll) return;
    for (const row of e.detail.fragment.querySelectorAll('tr[id]')) {
      if (document.getElementById(row.id)) row.remove();
    }
  });

  // What others did, said once per burst in #flash (politely): changes that land within
  // announceDelay of the first are counted together.
  const announceDelay = 400;
  let heard = [];
  let announceTimer = 0;
  function announce() {
    announceTimer = 0;
    const changes = heard;
    heard = [];
    if (!changes.length || !$('flash')) return;
    const c = changes[0];
    const text = changes.length > 1
      ? `${changes.length} items changed hands.`
      : c.change === 'bought' ? `${c.name} was bought by someone else.` : `${c.name} is back on sale.`;
    const msg = document.createElement('p');
    msg.textContent = text;
    $('flash').replaceChildren(msg);
  }

  document.addEventListener('htmx:sseMessage', (e) => {
    liveSwap = false;
    const live = e.target;
    if (!(live instanceof HTMLElement) || live.id !== 'live') return;
    // A stream the extension opens again starts from the last version this page saw.
    const id = e.detail?.lastEventId;
    if (id) {
      const u = new URL(live.getAttribute('sse-connect'), location.href);
      u.searchParams.set('since', id);
      live.setAttribute('sse-connect', u.pathname + u.search);
    }
    const changes = [...live.querySelectorAll('li[data-row]')].map((li) => li.dataset);
    // An open confirmation for an item that someone else just took: say so, and it cannot trade.
    const dialog = $('confirm');
    if (pending && dialog?.open && !pending.button.isConnected) {
      const row = 'item-' + pending.button.value;
      const taken = changes.find((c) => c.row === row && c.mine !== 'true');
      const still = document.getElementById(pending.button.id);
      if (taken || !still) {
        const name = pending.button.dataset.name;
        const next = liveFocus?.dialog && liveFocus.ids.slice(1).map((i) => $(i)).find(ready);
        openers.set(dialog, next || restingPlace(pending.button));
        pending = null;
        dialog.querySelector('.js-cancel')?.focus();
        $('confirm-ok').disabled = true;
        $('confirm-title').textContent = name + ' is gone';
        $('confirm-desc').textContent = `${name} was just ${taken?.change === 'sold' ? 'sold' : 'bought'} by someone else. Nothing was traded.`;
        if ($('confirm-gone')) $('confirm-gone').textContent = $('confirm-desc').textContent;
      } else {
        pending.button = still; // the same item, in the new rows
      }
    }
    // Focus that was on a row that left goes to the nearest row still there, never <body>.
    const active = document.activeElement;
    if (liveFocus && !liveFocus.dialog && (!active || active === document.body || !active.isConnected)) {
      (liveFocus.ids.map((i) => $(i)).find(ready) || restingPlace($('item-rows')))?.focus();
    }
    liveFocus = null;
    const others = changes.filter((c) => c.mine !== 'true' && c.shown === 'true');
    if (others.length) {
      heard.push(...others);
      if (!announceTimer) announceTimer = setTimeout(announce, announceDelay);
    }
  });

  // Another tab of this user took over the live updates.
  document.addEventListener('htmx:sseClose', (e) => {
    if (e.detail?.type !== 'message' || !$('flash')) return;
    const msg = document.createElement('p');
    msg.textContent = 'This page no longer updates by itself: another tab does. Reload it to see the market as it is.';
    $('flash').replaceChildren(msg);
  });
})();
