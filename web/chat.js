// The chat panel: messages over the client's reliable data channel (protocol.js `send`), shown
// with the sender's name and time, to everyone or to one participant; and files (files.js),
// picked or dropped, with their progress, a cancel button, and a save link on arrival. Every
// text goes into the page as text (textContent), never as HTML; http(s) links become anchors
// built element by element.

import { FileTransfers } from './files.js';

/** @typedef {import('./protocol.js').ConfabClient} ConfabClient */
/** @typedef {import('./files.js').Transfer} Transfer */

/**
 * A size for people.
 * @param {number} n bytes
 */
export function formatSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

/** A chat message on the wire (JSON text on the reliable channel). */
const KIND = 'chat';
/** The longest message the panel sends, in characters. */
export const MAX_CHAT_TEXT = 4000;

const LINK = /\bhttps?:\/\/[^\s<>"']+/g;

/**
 * Append `text` to `el`, with its http(s) links as anchors that open in a new tab.
 * @param {HTMLElement} el
 * @param {string} text
 */
export function appendLinkified(el, text) {
  let at = 0;
  for (const m of text.matchAll(LINK)) {
    // A link does not end in sentence punctuation.
    const url = m[0].replace(/[.,;:!?)\]]+$/, '');
    const start = m.index ?? 0;
    el.append(document.createTextNode(text.slice(at, start)));
    const a = document.createElement('a');
    a.href = url;
    a.textContent = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    el.append(a);
    at = start + url.length;
  }
  el.append(document.createTextNode(text.slice(at)));
}

/**
 * The chat of one call.
 */
export class Chat {
  /**
   * @param {{panel: HTMLElement, log: HTMLElement, form: HTMLFormElement, input: HTMLInputElement | HTMLTextAreaElement, badge: HTMLElement, to: HTMLSelectElement, file: HTMLInputElement}} ui
   * @param {() => ConfabClient | null} getClient
   */
  constructor(ui, getClient) {
    this.ui = ui;
    this.getClient = getClient;
    /** Messages received while the panel was closed. */
    this.unread = 0;
    this.files = new FileTransfers(getClient);
    /** transfer id -> its entry in the log. @type {Map<string, HTMLElement>} */
    this.fileItems = new Map();
    this.files.addEventListener('update', (ev) => this.#showTransfer(/** @type {CustomEvent<Transfer>} */ (ev).detail));
    ui.file.addEventListener('change', () => {
      for (const f of ui.file.files ?? []) this.sendFile(f);
      ui.file.value = '';
    });
    ui.panel.addEventListener('dragover', (ev) => {
      if (ev.dataTransfer?.types.includes('Files')) ev.preventDefault();
    });
    ui.panel.addEventListener('drop', (ev) => {
      if (!ev.dataTransfer?.files.length) return;
      ev.preventDefault();
      for (const f of ev.dataTransfer.files) this.sendFile(f);
    });
    ui.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.sendInput();
    });
    ui.input.addEventListener('keydown', (ev) => {
      const key = /** @type {KeyboardEvent} */ (ev);
      if (key.key === 'Enter' && !key.shiftKey) {
        ev.preventDefault();
        this.sendInput();
      }
    });
  }

  /** Send what is in the input box, if anything, to the chosen recipient. */
  sendInput() {
    const text = this.ui.input.value.trim().slice(0, MAX_CHAT_TEXT);
    if (!text) return;
    const client = this.getClient();
    const to = this.ui.to.value || undefined;
    if (!this.#recipientHere()) return;
    if (!client?.send(JSON.stringify({ kind: KIND, text }), { to })) {
      this.#system('Not connected yet: the message was not sent.');
      return;
    }
    this.ui.input.value = '';
    const name = to ? `You (to ${client.participants.get(to)?.name ?? 'someone'})` : 'You';
    this.#add(client.participantId ?? '', name, text, true);
  }

  /**
   * Send a file to the chosen recipient (everyone, or one participant).
   * @param {File} file
   */
  sendFile(file) {
    if (!this.#recipientHere()) return;
    this.files.send(file, this.ui.to.value);
  }

  /**
   * Whether the chosen recipient is still in the call; if not, say so. A private conversation
   * never falls back to the whole room by itself.
   */
  #recipientHere() {
    const to = this.ui.to.value;
    if (!to || this.getClient()?.participants.has(to)) return true;
    const name = this.ui.to.selectedOptions[0]?.dataset.name ?? 'They';
    this.#system(`${name} has left the call: nothing was sent. Choose who to send to.`);
    return false;
  }

  /** Keep the recipient list in step with the roster. */
  rosterChanged() {
    const client = this.getClient();
    const chosen = this.ui.to.value;
    const everyone = document.createElement('option');
    everyone.value = '';
    everyone.textContent = 'Everyone';
    const options = [everyone];
    for (const [id, p] of client?.participants ?? []) {
      const o = document.createElement('option');
      o.value = id;
      o.textContent = p.name;
      o.dataset.name = p.name;
      options.push(o);
    }
    // Someone chosen who has left stays chosen, marked, so that what is typed next for them is
    // not sent to everyone instead.
    if (chosen && !options.some((o) => o.value === chosen)) {
      const gone = document.createElement('option');
      gone.value = chosen;
      gone.dataset.name = this.ui.to.selectedOptions[0]?.dataset.name ?? 'They';
      gone.textContent = `${gone.dataset.name} (left)`;
      options.push(gone);
    }
    this.ui.to.replaceChildren(...options);
    this.ui.to.value = chosen;
  }

  /**
   * Draw a transfer: name, size, progress, state; cancel while it runs, save once it arrived.
   * @param {Transfer} t
   */
  #showTransfer(t) {
    let li = this.fileItems.get(t.id);
    if (!li) {
      li = document.createElement('li');
      li.className = 'chat-file';
      li.dataset.transfer = t.id;
      const head = document.createElement('div');
      head.className = 'chat-head';
      const who = document.createElement('span');
      who.className = 'chat-name';
      const client = this.getClient();
      const peerName = t.peer ? client?.participants.get(t.peer)?.name ?? 'someone' : 'everyone';
      who.textContent = t.direction === 'out' ? `You → ${peerName}` : peerName;
      head.append(who);
      const name = document.createElement('div');
      name.className = 'file-name';
      name.textContent = `${t.name} (${formatSize(t.size)})`;
      const bar = document.createElement('progress');
      bar.max = Math.max(t.size, 1);
      bar.value = 0;
      const row = document.createElement('div');
      row.className = 'file-row';
      const status = document.createElement('span');
      status.className = 'file-status';
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.className = 'file-cancel';
      cancel.textContent = 'Cancel';
      cancel.addEventListener('click', () => this.files.cancel(t.id));
      row.append(status, cancel);
      li.append(head, name, bar, row);
      this.fileItems.set(t.id, li);
      this.#append(li);
      if (t.direction === 'in' && this.ui.panel.hidden) {
        this.unread += 1;
        this.#showUnread();
      }
    }
    li.dataset.state = t.state;
    const bar = /** @type {HTMLProgressElement} */ (li.querySelector('progress'));
    const status = /** @type {HTMLElement} */ (li.querySelector('.file-status'));
    const cancel = /** @type {HTMLButtonElement} */ (li.querySelector('.file-cancel'));
    bar.value = t.size ? t.done : 1;
    const percent = t.size ? Math.floor((100 * t.done) / t.size) : 100;
    const running = t.state === 'sending' || t.state === 'receiving';
    cancel.hidden = !running;
    status.textContent =
      t.state === 'sending' ? (t.done < t.size ? `Sending… ${percent}%` : 'Waiting for the others to receive it…')
      : t.state === 'receiving' ? `Receiving… ${percent}%`
      : t.state === 'done' ? (t.direction === 'out' ? 'Sent' : t.verified ? 'Received, checked' : 'Received (not checked: this page is not on HTTPS)')
      : t.state === 'cancelled' ? `Cancelled${t.error ? `: ${t.error}` : ''}`
      : `Failed: ${t.error ?? 'unknown error'}`;
    if (t.state === 'done' && t.blob && !li.querySelector('a.file-save')) {
      const a = document.createElement('a');
      a.className = 'file-save';
      a.href = URL.createObjectURL(t.blob);
      a.download = t.name;
      a.textContent = 'Save';
      li.querySelector('.file-row')?.append(a);
    }
  }

  /**
   * A data message arrived: show it if it is a chat message.
   * @param {import('./protocol.js').DataDetail} d
   */
  onData(d) {
    if (this.files.onData(d)) return;
    if (typeof d.data !== 'string' || !d.reliable) return;
    /** @type {unknown} */
    let msg;
    try {
      msg = JSON.parse(d.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object' || /** @type {any} */ (msg).kind !== KIND) return;
    const text = /** @type {any} */ (msg).text;
    if (typeof text !== 'string') return;
    const name = this.getClient()?.participants.get(d.from)?.name ?? 'Someone';
    this.#add(d.from, name, text.slice(0, MAX_CHAT_TEXT), false, d.private);
    if (this.ui.panel.hidden) {
      this.unread += 1;
      this.#showUnread();
    }
  }

  /** The panel was opened: everything is read. */
  opened() {
    this.unread = 0;
    this.#showUnread();
    this.ui.log.scrollTop = this.ui.log.scrollHeight;
  }

  /** A new call: no messages, no transfers. */
  clear() {
    this.files.reset();
    for (const a of this.ui.log.querySelectorAll('a.file-save')) URL.revokeObjectURL(/** @type {HTMLAnchorElement} */ (a).href);
    this.fileItems.clear();
    this.ui.to.value = '';
    this.ui.log.replaceChildren();
    this.unread = 0;
    this.#showUnread();
  }

  #showUnread() {
    this.ui.badge.textContent = this.unread > 99 ? '99+' : String(this.unread);
    this.ui.badge.hidden = this.unread === 0;
  }

  /** @param {string} text */
  #system(text) {
    const li = document.createElement('li');
    li.className = 'chat-system';
    li.textContent = text;
    this.#append(li);
  }

  /**
   * @param {string} from
   * @param {string} name
   * @param {string} text
   * @param {boolean} mine
   * @param {boolean} [direct]
   */
  #add(from, name, text, mine, direct = false) {
    const li = document.createElement('li');
    li.className = mine ? 'chat-message mine' : 'chat-message';
    li.dataset.from = from;
    const head = document.createElement('div');
    head.className = 'chat-head';
    const who = document.createElement('span');
    who.className = 'chat-name';
    who.textContent = direct ? `${name} (to you)` : name;
    const time = document.createElement('time');
    const now = new Date();
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    head.append(who, time);
    const body = document.createElement('div');
    body.className = 'chat-text';
    appendLinkified(body, text);
    li.append(head, body);
    this.#append(li);
  }

  /** @param {HTMLElement} li */
  #append(li) {
    const log = this.ui.log;
    const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(li);
    if (atEnd) log.scrollTop = log.scrollHeight;
  }
}
