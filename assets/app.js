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
    if (d && !d.open) d.showModal();
  }

  // The trade waiting for confirmation: the button, htmx's issueRequest, and where focus goes
  // once the row has moved.
  let pending = null;
  let nextFocus = null;
  let typed = null; // the character of the shortcut just handled, until its keypress or keyup

  function nextFocusAfter(button) {
    const row = button.closest('tr');
    const near = row?.nextElementSibling || row?.previousElementSibling;
    return near?.querySelector('.js-item')?.id || 'q';
  }

  function askToConfirm(button, issueRequest) {
    const dialog = $('confirm');
    if (!dialog) return issueRequest(true);
    const selling = button.dataset.action === 'sell';
    const price = Number(button.dataset.price);
    const after = budget() + (selling ? price : -price);
    $('confirm-title').textContent = (selling ? 'Sell ' : 'Buy ') + button.dataset.name + '?';
    $('confirm-desc').textContent = selling
      ? `You get ${money(price)} back. Your budget will be ${money(after)}.`
      : after < 0
        ? `It costs ${money(price)}, more than your budget of ${money(budget())}.`
        : `It costs ${money(price)}. Your budget will be ${money(after)}.`;
    $('confirm-detail').textContent = button.dataset.description || '';
    $('confirm-ok').textContent = (selling ? 'Sell for ' : 'Buy for ') + money(price);
    pending = { button, issueRequest };
    dialog.returnValue = '';
    dialog.showModal();
    $('confirm-ok').focus();
  }

  document.addEventListener('htmx:confirm', (e) => {
    const button = e.detail.elt;
    if (!(button instanceof HTMLElement) || !button.classList.contains('js-item')) return;
    e.preventDefault();
    // Already on its way: a second confirmation would only trade a row that is about to move.
    if (button.getAttribute('aria-disabled') === 'true') return;
    askToConfirm(button, e.detail.issueRequest);
  });

  function onConfirmClose(dialog) {
    if (dialog.open) return; // the close event of an earlier closing, after the dialog reopened
    const p = pending;
    pending = null;
    if (!p || dialog.returnValue !== 'confirm') return; // Escape or Cancel: focus returns natively
    nextFocus = nextFocusAfter(p.button);
    p.issueRequest(true);
  }

  // Before a trade: clear both live regions, so the same message is announced again, and mark
  // the button busy until the answer comes.
  document.addEventListener('htmx:beforeRequest', (e) => {
    const elt = e.detail.elt;
    if (!elt?.classList?.contains('js-item')) return;
    for (const id of ['flash', 'flash-alert']) if ($(id)) $(id).textContent = '';
    elt.setAttribute('aria-disabled', 'true');
  });

  // After a trade the row may be gone, and focus with it: focus the next item, never <body>.
  // htmx fires afterRequest in the same task as the swap and the settle, and fires it again on
  // the nearest ancestor still in the page when the button itself was removed.
  document.addEventListener('htmx:afterRequest', (e) => {
    const elt = e.detail.requestConfig?.elt; // detail.elt is the ancestor on the second firing
    if (!elt?.classList?.contains('js-item')) return;
    elt.removeAttribute('aria-disabled');
    const returned = elt.dataset.action === 'sell' && $('item-' + elt.value);
    if (returned && returned.parentElement?.id === 'item-rows') placeReturned(returned);
    if (!nextFocus) return;
    const id = nextFocus;
    nextFocus = null;
    const active = document.activeElement;
    if (active && active !== document.body && active.isConnected) return;
    (elt.isConnected ? elt : $(id) || $('q'))?.focus();
  });

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

  // New search results replace the rows, and the item that had focus goes with them (a key
  // pressed before the debounced search answered): focus the first result, never <body>.
  let focusInResults = false;
  document.addEventListener('htmx:beforeSwap', (e) => {
    focusInResults = e.detail.target?.id === 'item-rows' && !!document.activeElement?.closest('#item-rows');
  });

  document.addEventListener('htmx:afterSwap', (e) => {
    const target = e.detail.target;
    if (target?.id === 'item-rows' && focusInResults) {
      focusInResults = false;
      const active = document.activeElement;
      if (!active || active === document.body || !active.isConnected) (target.querySelector('.js-item') || $('q'))?.focus();
    }
    // Item details open in a dialog once htmx has put them in place.
    if (target?.id === 'item-dialog-body') {
      const d = $('item-dialog');
      if (d && !d.open) d.showModal();
    }
  });

  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    // Escape leaves the search box with its results on screen, for j and k to walk (a search
    // box would otherwise clear itself and bring every item back).
    if (e.key === 'Escape' && e.target === $('q')) {
      e.preventDefault();
      e.target.blur();
      return;
    }
    if (document.querySelector('dialog[open]') || editable(e.target)) return;
    const list = items();
    const i = list.indexOf(document.activeElement);
    const arrow = e.key === 'ArrowDown' || e.key === 'ArrowUp';
    const nav = arrow ? (i >= 0 ? e.key : null) : shortcutsOn() && (e.key === 'j' || e.key === 'k') ? e.key : null;
    if (nav) {
      const n = nav === 'ArrowDown' || nav === 'j' ? (i < 0 ? 0 : i + 1) : i - 1;
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

  // Dialogs, the shortcuts button and the switch are handled from the document: a history
  // restore swaps the whole body, and listeners on the old elements would be gone with them.
  document.addEventListener('click', (e) => {
    if (!(e.target instanceof Element)) return;
    if (e.target.closest('#shortcuts-open')) openShortcuts();
    else e.target.closest('dialog .js-close')?.closest('dialog')?.close();
  });
  document.addEventListener('change', (e) => {
    if (e.target instanceof HTMLInputElement && e.target.id === 'char-keys') setShortcuts(e.target.checked);
  });
  // close does not bubble; the capture phase still sees it.
  document.addEventListener('close', (e) => {
    if (e.target instanceof HTMLDialogElement && e.target.id === 'confirm') onConfirmClose(e.target);
  }, true);
  // A held Enter repeats: never let the repeat confirm a trade.
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && e.repeat && e.target instanceof Element && e.target.closest('dialog')) e.preventDefault();
  }, true);
})();
