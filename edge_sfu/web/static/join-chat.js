// @ts-check
// The join page's chat: every participant publishes a reliable, ordered data track named
// 'chat'; a message is JSON {"type": "chat", "text": "..."}. The sender's name is the
// identity the SFU gives the track's participant (never a name inside the message), the time
// is when this browser received it. Everything goes into the page as text.
import { LocalDataTrack } from '/static/edge-video.js';

/** @typedef {import('/static/edge-video.js').RemoteDataTrack} RemoteDataTrack */

export const CHAT_TRACK_NAME = 'chat';
/** Characters of one message (a data message also has to fit 16 KiB of UTF-8). */
export const MAX_CHAT_CHARS = 10000;

export class Chat {
  /**
   * @param {HTMLOListElement} log
   * @param {HTMLElement} unread the badge counting messages not seen yet
   * @param {() => boolean} isVisible whether the log is on screen
   */
  constructor(log, unread, isVisible) {
    this.log = log;
    this.unread = unread;
    this.isVisible = isVisible;
    this.unseen = 0;
    /** @type {LocalDataTrack | null} */
    this.track = null;
  }

  /** A new track to publish with the next join (a data track is published once). */
  newTrack() {
    this.track = new LocalDataTrack({ name: CHAT_TRACK_NAME });
    return this.track;
  }

  /**
   * Show what another participant's chat track brings.
   * @param {RemoteDataTrack} track
   * @param {string} identity
   */
  listen(track, identity) {
    if (track.name !== CHAT_TRACK_NAME) return;
    track.on('message', /** @param {string | ArrayBuffer} data */ (data) => {
      if (typeof data !== 'string') return;
      let msg;
      try {
        msg = JSON.parse(data);
      } catch {
        return;
      }
      if (!msg || msg.type !== 'chat' || typeof msg.text !== 'string' || !msg.text) return;
      this.add(identity, msg.text.slice(0, MAX_CHAT_CHARS), false);
    });
  }

  /**
   * Send a message to everyone; false if it could not go (not connected yet); throws an
   * Error to show when it is too long.
   * @param {string} text
   * @param {string} me this participant's identity
   * @returns {boolean}
   */
  send(text, me) {
    const clean = text.trim().slice(0, MAX_CHAT_CHARS);
    if (!clean || !this.track) return false;
    try {
      if (!this.track.send(JSON.stringify({ type: 'chat', text: clean }))) return false;
    } catch (err) {
      throw new Error('This message is too long to send: make it shorter.', { cause: err });
    }
    this.add(me, clean, true);
    return true;
  }

  /**
   * @param {string} who
   * @param {string} text
   * @param {boolean} own
   */
  add(who, text, own) {
    const now = new Date();
    const item = document.createElement('li');
    if (own) item.classList.add('own');
    const name = document.createElement('span');
    name.className = 'who';
    name.textContent = own ? `${who} (you)` : who;
    const time = document.createElement('time');
    time.dateTime = now.toISOString();
    time.textContent = now.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const body = document.createElement('p');
    body.className = 'text';
    body.textContent = text;
    item.append(name, time, body);
    this.log.append(item);
    this.log.scrollTop = this.log.scrollHeight;
    if (!own && !this.isVisible()) {
      this.unseen += 1;
      this.unread.textContent = String(this.unseen);
      this.unread.hidden = false;
    }
  }

  /** The log is on screen: nothing is unread. */
  seen() {
    this.unseen = 0;
    this.unread.hidden = true;
    this.log.scrollTop = this.log.scrollHeight;
  }
}
