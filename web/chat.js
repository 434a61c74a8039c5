// The chat panel: messages over the client's reliable data channel (protocol.js `send`), shown
// with the sender's name and time. Every text goes into the page as text (textContent), never
// as HTML; http(s) links become anchors built element by element.

/** @typedef {import('./protocol.js').ConfabClient} ConfabClient */

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
   * @param {{panel: HTMLElement, log: HTMLElement, form: HTMLFormElement, input: HTMLInputElement | HTMLTextAreaElement, badge: HTMLElement}} ui
   * @param {() => ConfabClient | null} getClient
   */
  constructor(ui, getClient) {
    this.ui = ui;
    this.getClient = getClient;
    /** Messages received while the panel was closed. */
    this.unread = 0;
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

  /** Send what is in the input box, if anything. */
  sendInput() {
    const text = this.ui.input.value.trim().slice(0, MAX_CHAT_TEXT);
    if (!text) return;
    const client = this.getClient();
    if (!client?.send(JSON.stringify({ kind: KIND, text }))) {
      this.#system('Not connected yet: the message was not sent.');
      return;
    }
    this.ui.input.value = '';
    this.#add(client.participantId ?? '', 'You', text, true);
  }

  /**
   * A data message arrived: show it if it is a chat message.
   * @param {import('./protocol.js').DataDetail} d
   */
  onData(d) {
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

  /** A new call: no messages. */
  clear() {
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
