// The operator's and account pages: what they add to app.js (loaded before this file). Nothing
// here is needed for the pages to work: without it every form still posts.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);

  // j and k (and the arrows, from a row) walk these pages' rows (.js-row): taken here, before
  // app.js, whose j and k walk the market's items.
  window.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (document.querySelector('dialog[open]') || !(e.target instanceof Element) || e.target.closest('input,textarea,select')) return;
    const rows = [...document.querySelectorAll('.js-row')];
    const row = document.activeElement?.closest('tr');
    const i = rows.findIndex((b) => b === document.activeElement || (row && b.closest('tr') === row));
    const on = document.querySelector('meta[name="keyboard-shortcuts-preference"]')?.content !== 'no_character_key';
    const down = e.key === 'ArrowDown' || (on && e.key === 'j');
    const up = e.key === 'ArrowUp' || (on && e.key === 'k');
    if (!rows.length || !(down || up) || (i < 0 && e.key.startsWith('Arrow'))) return;
    const n = i < 0 ? (down ? 0 : -1) : i + (down ? 1 : -1);
    rows[n]?.focus();
    e.preventDefault();
  }, true);

  // Operators' actions (retire an item, grant money) ask first, in #action-confirm, filled from
  // the button's data-confirm (a "%s" in it is the value of the input data-confirm-input names),
  // data-confirm-desc and data-confirm-ok. Without this script the forms post at once.
  let pendingAction = null;
  document.addEventListener('htmx:confirm', (e) => {
    const button = e.detail.elt;
    const dialog = $('action-confirm');
    if (!(button instanceof HTMLElement) || !button.classList.contains('js-confirm') || !dialog) return;
    const input = button.dataset.confirmInput ? $(button.dataset.confirmInput) : null;
    if (input && !input.value.trim()) return; // nothing to confirm: the server says what is missing
    e.preventDefault();
    // A typed amount reads as money: "Grant $1,000 to ann?", "Grant -$50 to ann?".
    const typed = input ? input.value.trim() : '';
    const amount = /^[+-]?\d+$/.test(typed) ? Number(typed) : NaN;
    const title = button.dataset.confirm || 'Confirm?';
    $('action-title').textContent = Number.isSafeInteger(amount)
      ? title.replace('$%s', (amount < 0 ? '-$' : '$') + Math.abs(amount).toLocaleString('en-US'))
      : title.replace('%s', typed);
    $('action-desc').textContent = button.dataset.confirmDesc || '';
    $('action-ok').textContent = button.dataset.confirmOk || 'Confirm';
    // What takes something away (a retirement, a negative grant) looks it, in the dialog too.
    $('action-ok').classList.toggle('btn-danger', button.classList.contains('btn-danger'));
    $('action-ok').classList.toggle('btn-primary', !button.classList.contains('btn-danger'));
    pendingAction = { button, issueRequest: e.detail.issueRequest };
    dialog.returnValue = '';
    dialog.showModal();
    $('action-ok').focus();
  });
  document.addEventListener('submit', (e) => {
    const dialog = e.target instanceof Element && e.target.closest('dialog#action-confirm');
    if (!dialog || e.submitter?.value !== 'confirm') return;
    e.preventDefault();
    const p = pendingAction;
    pendingAction = null;
    if (!dialog.open || !p) return;
    dialog.close('confirm');
    const row = p.button.closest('tr');
    const next = [];
    for (const step of ['nextElementSibling', 'previousElementSibling']) {
      for (let r = row?.[step]; r; r = r[step]) next.push(...r.querySelectorAll('.js-row, .js-item'));
    }
    const focus = { id: p.button.id, next };
    // Heard on the button itself: htmx tells no ancestor once its row has left the page.
    p.button.addEventListener('htmx:afterRequest', () => actionDone(focus), { once: true });
    for (const id of ['flash', 'flash-alert']) if ($(id)) $(id).textContent = '';
    p.issueRequest(true);
  });
  // A picture over the size the server takes is refused before it is sent.
  document.addEventListener('change', (e) => {
    const input = e.target;
    if (!(input instanceof HTMLInputElement) || input.id !== 'picture') return;
    const big = [...(input.files || [])].some((f) => f.size > 5 * 1024 * 1024);
    input.setCustomValidity(big ? 'That picture is too large: up to 5 MB.' : '');
    input.reportValidity();
  });

  // A grant's button turns destructive while its amount takes money away.
  document.addEventListener('input', (e) => {
    const input = e.target;
    if (!(input instanceof HTMLInputElement) || !input.closest('.grant-form')) return;
    input.closest('.grant-form').querySelector('button')?.classList.toggle('btn-danger', input.value.trim().startsWith('-'));
  });
  document.addEventListener('cancel', (e) => {
    if (e.target instanceof HTMLDialogElement && e.target.id === 'action-confirm') pendingAction = null;
  }, true);
  // After the answer: focus stays on the action's button (a new row keeps its id), or, when its
  // row left, goes to the nearest row still there, else the search box; never <body>.
  function actionDone(f) {
    const active = document.activeElement;
    if (active && active !== document.body && active.isConnected && !active.closest('dialog:not([open])')) return;
    ($(f.id) || f.next.find((b) => b.isConnected) || $('main'))?.focus();
  }

  // A form htmx replaces with its answer (hx-target="this": an operator's or the account's form)
  // takes the focus its submit button had: to the error summary when there is one, else to its
  // first field, ready for the next entry. Never <body>.
  let replacingForm = null;
  document.addEventListener('htmx:beforeRequest', (e) => {
    const form = e.detail.elt;
    if (form instanceof HTMLFormElement && form.id && form.getAttribute('hx-target') === 'this') replacingForm = form.id;
  });
  const refocusForm = () => {
    const id = replacingForm;
    const active = document.activeElement;
    if (!id || (active && active !== document.body && active.isConnected)) return;
    replacingForm = null;
    const form = $(id);
    (form?.querySelector('.error-summary') || form?.querySelector('input:not([type="hidden"]), textarea'))?.focus();
  };
  document.addEventListener('htmx:afterSettle', refocusForm);
  document.addEventListener('htmx:afterSwap', refocusForm);
})();
