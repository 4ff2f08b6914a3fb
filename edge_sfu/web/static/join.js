// The join page: /join/{room}?token=JWT or ?invite=INVITE. Joins with camera and microphone
// and shows every participant in a grid. Names only ever go through textContent.
import { connect } from '/static/edge-video.js';

const $ = (id) => document.getElementById(id);
const tiles = new Map(); // participant SID -> tile element

function setStatus(state, detail) {
  const el = $('status');
  el.textContent = detail ? `${state}: ${detail}` : state;
  el.className = `status ${state}`;
  document.body.dataset.state = state;
}

function roomFromPath() {
  const last = window.location.pathname.split('/').filter(Boolean).pop() || '';
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

function makeTile(sid, name, local) {
  const tile = $('tile-template').content.firstElementChild.cloneNode(true);
  tile.dataset.sid = sid;
  tile.querySelector('.name').textContent = local ? `${name} (you)` : name;
  if (local) tile.classList.add('local');
  $('grid').append(tile);
  tiles.set(sid, tile);
  return tile;
}

function setBadge(tile, kind, enabled) {
  if (kind === 'data') return; // data tracks have no picture or sound to badge
  const badge = tile && tile.querySelector(kind === 'audio' ? '.mic-off' : '.cam-off');
  if (badge) badge.hidden = enabled;
}

function showTrack(participant, track) {
  const tile = tiles.get(participant.sid);
  if (!tile || track.kind === 'data') return;
  const el = track.attach();
  el.dataset.trackSid = track.sid;
  tile.querySelector('.media').append(el);
  setBadge(tile, track.kind, track.isEnabled);
}

function addParticipant(participant) {
  if (tiles.has(participant.sid)) return;
  makeTile(participant.sid, participant.identity, false);
  for (const publication of participant.tracks.values()) {
    setBadge(tiles.get(participant.sid), publication.kind, publication.isTrackEnabled);
    if (publication.track) showTrack(participant, publication.track);
  }
}

function removeParticipant(participant) {
  const tile = tiles.get(participant.sid);
  if (tile) tile.remove();
  tiles.delete(participant.sid);
}

function wireControls(room) {
  const toggle = (button, kind, onText, offText) => {
    button.addEventListener('click', () => {
      const tracks = [...room.localParticipant.tracks.values()].filter((t) => t.kind === kind);
      const enable = button.getAttribute('aria-pressed') === 'true';
      for (const track of tracks) track.enable(enable);
      button.setAttribute('aria-pressed', String(!enable));
      button.textContent = enable ? onText : offText;
      setBadge(tiles.get(room.localParticipant.sid), kind, enable);
    });
  };
  toggle($('mic'), 'audio', 'Mute mic', 'Unmute mic');
  toggle($('camera'), 'video', 'Stop camera', 'Start camera');
  $('leave').addEventListener('click', () => room.disconnect());
  window.addEventListener('pagehide', () => room.disconnect());
  $('controls').hidden = false;
}

function wireRoom(room) {
  room.on('participantConnected', addParticipant);
  room.on('participantDisconnected', removeParticipant);
  room.on('trackSubscribed', (track, publication, participant) => showTrack(participant, track));
  room.on('trackUnsubscribed', (track) => {
    for (const el of document.querySelectorAll('[data-track-sid]')) {
      if (el.dataset.trackSid === track.sid) el.remove();
    }
  });
  room.on('trackEnabled', (publication, participant) => setBadge(tiles.get(participant.sid), publication.kind, true));
  room.on('trackDisabled', (publication, participant) => setBadge(tiles.get(participant.sid), publication.kind, false));
  for (const event of ['participantReconnecting', 'participantReconnected']) {
    room.on(event, (participant) => {
      const badge = tiles.get(participant.sid)?.querySelector('.state');
      if (!badge) return;
      badge.hidden = event === 'participantReconnected';
      badge.textContent = 'reconnecting';
    });
  }
  room.on('reconnecting', () => setStatus('reconnecting'));
  room.on('reconnected', () => setStatus('connected'));
  room.on('disconnected', (_room, error) => {
    setStatus('disconnected', error ? `${error.message} (${error.code})` : 'left');
    $('controls').hidden = true;
  });
}

async function join(token, roomName, identity) {
  setStatus('connecting');
  let room;
  try {
    room = await connect(token, { name: roomName, audio: true, video: true });
  } catch (err) {
    setStatus('disconnected', `${err.message}${err.code ? ` (${err.code})` : ''}`);
    return;
  }
  window.edgeRoom = room; // for diagnostics and tests
  const local = makeTile(room.localParticipant.sid, room.localParticipant.identity || identity, true);
  for (const track of room.localParticipant.tracks.values()) {
    if (track.kind === 'video') local.querySelector('.media').append(track.attach());
  }
  wireRoom(room);
  for (const participant of room.participants.values()) addParticipant(participant);
  wireControls(room);
  setStatus('connected');
}

async function redeem(invite, identity) {
  const body = new URLSearchParams({ Invite: invite, Identity: identity });
  const response = await fetch('/v1/Invites/Redeem', { method: 'POST', body });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || `invite refused (${response.status})`);
  return data;
}

function askName(invite, roomName) {
  const form = $('invite-form');
  form.hidden = false;
  setStatus('waiting', 'enter your name');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const identity = $('identity').value.trim();
    $('invite-error').textContent = '';
    try {
      const granted = await redeem(invite, identity);
      form.hidden = true;
      await join(granted.token, granted.room || roomName, granted.identity);
    } catch (err) {
      $('invite-error').textContent = err.message;
    }
  });
}

function main() {
  const roomName = roomFromPath();
  $('room-name').textContent = roomName;
  document.title = `Join ${roomName}`;
  const params = new URLSearchParams(window.location.search);
  const token = params.get('token');
  const invite = params.get('invite');
  // Keep credentials out of the address bar, history and screenshots.
  window.history.replaceState(null, '', window.location.pathname);
  if (token) join(token, roomName, '');
  else if (invite) askName(invite, roomName);
  else setStatus('disconnected', 'this link has no token or invite');
}

main();
