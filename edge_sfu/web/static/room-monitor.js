// @ts-check
// The room monitor: a table of every track this page sends and receives, from the browser's
// own RTCPeerConnection.getStats(), refreshed every second (like Twilio's Room Monitor).
// Names go in through textContent only: an identity or track name is never markup.

/**
 * @typedef {import('/static/edge-video.js').Room} Room
 * @typedef {import('/static/edge-video.js').Participant} Participant
 * @typedef {import('/static/edge-video.js').LocalParticipant} LocalParticipant
 */

/** Columns, in order: [key of a MonitorRow, heading]. */
const COLUMNS = /** @type {const} */ ([
  ['direction', ''],
  ['participant', 'Participant'],
  ['track', 'Track'],
  ['kind', 'Kind'],
  ['bitrate', 'kbit/s'],
  ['fps', 'fps'],
  ['size', 'Size'],
  ['layer', 'Layer'],
  ['loss', 'Lost'],
  ['jitter', 'Jitter ms'],
  ['rtt', 'RTT ms'],
]);

/**
 * One table row: what is known of one track, as display text.
 * @typedef {{
 *   key: string, direction: string, participant: string, track: string, kind: string,
 *   bitrate: string, fps: string, size: string, layer: string, loss: string,
 *   jitter: string, rtt: string,
 * }} MonitorRow
 */

/**
 * Who sent a media track, by MediaStreamTrack id.
 * @typedef {{participant: string, track: string, sid: string}} TrackOwner
 */

/**
 * @param {number | undefined} value
 * @param {number} [digits]
 */
const num = (value, digits = 0) =>
  typeof value === 'number' && Number.isFinite(value) ? value.toFixed(digits) : '—';

/**
 * Milliseconds from seconds, or a dash.
 * @param {number | undefined} seconds
 */
const ms = (seconds) => (typeof seconds === 'number' ? num(seconds * 1000, 1) : '—');

export class RoomMonitor {
  /**
   * @param {Room} room
   * @param {HTMLElement} container the panel; the table is made inside it
   * @param {number} [intervalMs]
   */
  constructor(room, container, intervalMs = 1000) {
    this._room = room;
    this._container = container;
    this._intervalMs = intervalMs;
    /** @type {ReturnType<typeof setInterval> | null} */
    this._timer = null;
    /** @type {Map<string, {bytes: number, at: number}>} stats id -> last byte count */
    this._last = new Map();
    this._body = this._makeTable();
  }

  get running() {
    return this._timer !== null;
  }

  /** Start refreshing (now, then every interval). */
  start() {
    if (this._timer !== null) return;
    this._timer = setInterval(() => void this.refresh(), this._intervalMs);
    void this.refresh();
  }

  /** Stop refreshing; the last figures stay on screen. */
  stop() {
    if (this._timer !== null) clearInterval(this._timer);
    this._timer = null;
  }

  /** Read the stats once and redraw the table. */
  async refresh() {
    let stats;
    try {
      stats = await this._room.getStats();
    } catch {
      return; // the connection is going away: keep the last figures
    }
    this._render(this.rows(stats, this._owners(), performance.now()));
  }

  /** @returns {HTMLTableSectionElement} */
  _makeTable() {
    const table = document.createElement('table');
    table.className = 'monitor-table';
    const head = table.createTHead().insertRow();
    for (const [, title] of COLUMNS) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.textContent = title;
      head.append(th);
    }
    const body = table.createTBody();
    this._container.append(table);
    return body;
  }

  /** @returns {Map<string, TrackOwner>} */
  _owners() {
    /** @type {Map<string, TrackOwner>} */
    const owners = new Map();
    const me = /** @type {LocalParticipant | null} */ (this._room.localParticipant);
    if (me) {
      for (const track of me.tracks.values()) {
        if (track.kind === 'data') continue;
        const id = /** @type {{mediaStreamTrack: MediaStreamTrack}} */ (track).mediaStreamTrack.id;
        owners.set(id, { participant: `${me.identity} (you)`, track: track.name, sid: track.sid || '' });
      }
    }
    for (const participant of /** @type {Iterable<Participant>} */ (this._room.participants.values())) {
      for (const publication of participant.tracks.values()) {
        const track = publication.track;
        if (!track || track.kind === 'data') continue;
        const id = /** @type {{mediaStreamTrack: MediaStreamTrack}} */ (track).mediaStreamTrack.id;
        owners.set(id, { participant: participant.identity, track: publication.trackName, sid: publication.trackSid });
      }
    }
    return owners;
  }

  /**
   * The rows for one stats snapshot: one per RTP stream sent or received.
   * @param {any[]} stats RTCStatsReport values
   * @param {Map<string, TrackOwner>} owners
   * @param {number} now milliseconds
   * @returns {MonitorRow[]}
   */
  rows(stats, owners, now) {
    /** @type {Map<string, any>} */
    const byId = new Map(stats.map((s) => [s.id, s]));
    const pair = stats.find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
    /** @type {MonitorRow[]} */
    const rows = [];
    for (const s of stats) {
      if (s.type !== 'inbound-rtp' && s.type !== 'outbound-rtp') continue;
      const inbound = s.type === 'inbound-rtp';
      const trackId = inbound ? s.trackIdentifier : byId.get(s.mediaSourceId)?.trackIdentifier;
      const owner = owners.get(trackId);
      if (!owner) continue; // an m-line waiting for its next publication
      const bytes = inbound ? s.bytesReceived : s.bytesSent;
      const last = this._last.get(s.id);
      this._last.set(s.id, { bytes, at: now });
      const kbps = last && now > last.at ? ((bytes - last.bytes) * 8) / (now - last.at) : undefined;
      // Received: the loss and jitter this browser measured, the path's RTT. Sent: what
      // the SFU's receiver reports say about this stream.
      const remote = inbound ? null : byId.get(s.remoteId);
      const lost = inbound ? s.packetsLost : remote?.packetsLost;
      const packets = inbound ? s.packetsReceived : s.packetsSent;
      const lossPct = typeof lost === 'number' && packets + lost > 0 ? (100 * lost) / (packets + lost) : undefined;
      rows.push({
        key: s.id,
        direction: inbound ? '↓' : '↑',
        participant: owner.participant,
        track: owner.track,
        kind: s.kind,
        bitrate: num(kbps),
        fps: num(s.framesPerSecond),
        size: s.frameWidth ? `${s.frameWidth}×${s.frameHeight}` : '—',
        layer: s.rid || '—', // the browser knows the layers it sends, not the one the SFU picked
        loss: typeof lost === 'number' ? `${lost} (${num(lossPct, 1)}%)` : '—',
        jitter: ms(inbound ? s.jitter : remote?.jitter),
        rtt: ms(inbound ? pair?.currentRoundTripTime : remote?.roundTripTime ?? pair?.currentRoundTripTime),
      });
    }
    rows.sort((a, b) => a.direction.localeCompare(b.direction) || a.participant.localeCompare(b.participant) || a.track.localeCompare(b.track));
    return rows;
  }

  /** @param {MonitorRow[]} rows */
  _render(rows) {
    const tableRows = rows.map((row) => {
      const tr = document.createElement('tr');
      tr.dataset.key = row.key;
      tr.dataset.direction = row.direction === '↓' ? 'in' : 'out';
      for (const [key] of COLUMNS) {
        const td = document.createElement('td');
        td.className = key;
        td.textContent = row[key];
        tr.append(td);
      }
      return tr;
    });
    this._body.replaceChildren(...tableRows);
  }
}
