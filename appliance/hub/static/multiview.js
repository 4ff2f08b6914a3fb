// @ts-check
// The hub's multi-view page: every field unit's live picture in a grid, with its name, its
// state (live, reconnecting since…, offline since…, discovered), bitrate, network quality and
// whether the hub records it. Click a tile to enlarge it: its element grows, so the client
// asks for a larger layer (render size), and its priority goes up.
//
// The page joins the field room as a receive-only participant with the join page's client
// and polls the hub for the units' states. When the hub cannot be reached the units are
// shown reconnecting since then, and the page joins again as soon as the hub answers.
import { connect } from '/static/edge-video.js';

/**
 * @typedef {import('/static/edge-video.js').Room} Room
 * @typedef {import('/static/edge-video.js').RemoteTrack} RemoteTrack
 * @typedef {{identity: string, state: string, since: number, bitrate_kbps: number,
 *   network_quality_level: number | null, recording: boolean, address: string}} Unit
 */

const POLL_MS = 1000;
const grid = /** @type {HTMLElement} */ (document.getElementById('grid'));
const status = /** @type {HTMLElement} */ (document.getElementById('hub-status'));
const token = grid.dataset.token || '';
const roomName = grid.dataset.room || '';
const unitsUrl = grid.dataset.units || '';
// The token is in the page; keep it out of the address bar and history.
if (location.search) history.replaceState(null, '', location.pathname);

/** @type {Room | null} */
let room = null;
let joining = false;
/** @type {number | null} when the hub stopped answering (ms since the epoch) */
let unreachableSince = null;
/** @type {Map<string, HTMLElement>} tiles by identity */
const tiles = new Map();
/** @type {Map<string, RemoteTrack>} video tracks by identity */
const videos = new Map();

/** @param {number} seconds Unix time @returns {string} */
const clock = (seconds) => new Date(seconds * 1000).toLocaleTimeString();

/** @param {string} identity @returns {HTMLElement} */
function tile(identity) {
  let el = tiles.get(identity);
  if (el) return el;
  el = document.createElement('section');
  el.className = 'tile';
  el.dataset.identity = identity;
  el.tabIndex = 0;
  const picture = document.createElement('div');
  picture.className = 'picture';
  const name = document.createElement('h2');
  name.textContent = identity;
  const state = document.createElement('p');
  state.className = 'state';
  const figures = document.createElement('p');
  figures.className = 'figures';
  const rec = document.createElement('span');
  rec.className = 'rec';
  rec.textContent = 'recording';
  rec.hidden = true;
  el.append(picture, name, state, figures, rec);
  el.addEventListener('click', () => enlarge(identity));
  el.addEventListener('keydown', (event) => { if (event.key === 'Enter') enlarge(identity); });
  grid.append(el);
  tiles.set(identity, el);
  return el;
}

/** Enlarge one tile (or shrink it back): a larger element asks for a larger layer. @param {string} identity */
function enlarge(identity) {
  for (const [who, el] of tiles) {
    const big = who === identity && !el.classList.contains('enlarged');
    el.classList.toggle('enlarged', big);
    const track = videos.get(who);
    if (track) track.setPriority(big ? 'high' : null);
  }
}

/** @param {HTMLElement} el @param {string} state @param {string} text */
function setState(el, state, text) {
  el.dataset.state = state;
  const p = /** @type {HTMLElement} */ (el.querySelector('.state'));
  p.textContent = text;
}

/** @param {Unit} unit */
function show(unit) {
  const el = tile(unit.identity);
  const words = {
    live: 'live',
    reconnecting: `reconnecting since ${clock(unit.since)}`,
    offline: `offline since ${clock(unit.since)}`,
    discovered: `discovered${unit.address ? ` at ${unit.address}` : ''}, not yet joined`,
  };
  setState(el, unit.state, /** @type {Record<string, string>} */ (words)[unit.state] || unit.state);
  const quality = unit.network_quality_level === null ? '–' : `${unit.network_quality_level}/5`;
  const figures = /** @type {HTMLElement} */ (el.querySelector('.figures'));
  figures.textContent = unit.state === 'live' ? `${Math.round(unit.bitrate_kbps)} kbit/s · network ${quality}` : '';
  /** @type {HTMLElement} */ (el.querySelector('.rec')).hidden = !unit.recording;
}

async function poll() {
  try {
    const response = await fetch(unitsUrl, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
    if (!response.ok) throw new Error(`the hub answered ${response.status}`);
    const body = await response.json();
    unreachableSince = null;
    status.textContent = room ? `room ${roomName}` : `joining room ${roomName}…`;
    /** @type {Unit[]} */ (body.units).forEach(show);
    if (!room && !joining) join();
  } catch (error) {
    if (unreachableSince === null) unreachableSince = Date.now();
    const since = clock(unreachableSince / 1000);
    status.textContent = `the hub does not answer since ${since}`;
    for (const el of tiles.values()) {
      if (el.dataset.state === 'live') setState(el, 'reconnecting', `reconnecting since ${since}`);
    }
  }
}

/** @param {string} identity @param {RemoteTrack} track */
function showVideo(identity, track) {
  const picture = /** @type {HTMLElement} */ (tile(identity).querySelector('.picture'));
  const old = videos.get(identity);
  if (old && old !== track) old.detach();
  videos.set(identity, track);
  const el = /** @type {HTMLVideoElement} */ (track.attach());
  el.muted = true;
  el.playsInline = true;
  picture.replaceChildren(el);
}

async function join() {
  joining = true;
  try {
    const r = await connect(token, { name: roomName, tracks: [] });
    room = r;
    r.on('trackSubscribed', /** @param {RemoteTrack} track @param {unknown} _pub @param {{identity: string}} who */ (track, _pub, who) => {
      if (track.kind === 'video') showVideo(who.identity, track);
    });
    r.on('trackUnsubscribed', /** @param {RemoteTrack} track @param {unknown} _pub @param {{identity: string}} who */ (track, _pub, who) => {
      if (videos.get(who.identity) === track) {
        track.detach();
        videos.delete(who.identity);
      }
    });
    r.on('disconnected', () => {
      room = null;
      for (const track of videos.values()) track.detach();
      videos.clear();
    });
  } catch (error) {
    room = null;
  } finally {
    joining = false;
  }
}

poll();
setInterval(poll, POLL_MS);
