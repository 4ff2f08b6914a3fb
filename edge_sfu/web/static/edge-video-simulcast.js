// @ts-check
// edge-video-simulcast.js: how edge-video.js publishes camera video: which codec, whether
// as simulcast layers (and which), the encoder settings of each layer, and pausing the
// layers nobody in the room receives (the server's `send-layers`).
//
// Simulcast here is RID-based (RFC 8853): the server's offer lists one rid per layer the
// client announced in `publish`, the browser makes one encoding per rid, and this module
// gives each encoding its size and bitrate. Imported by edge-video.js.

import { PROTOCOL } from './edge-video-tracks.js';

/**
 * @typedef {import('./edge-video-tracks.js').LayerRequest} LayerRequest
 * @typedef {'VP8' | 'H264'} VideoCodecName
 * @typedef {{codec: VideoCodecName, simulcast?: boolean}} VideoCodecSettings
 * @typedef {'auto' | (VideoCodecName | VideoCodecSettings)[]} PreferredVideoCodecs
 * @typedef {{codec: VideoCodecName, simulcast: boolean}} VideoPlan
 */

/** Layer rids from the top down: the full picture is always `f`. */
const RIDS_FROM_TOP = ['f', 'h', 'q'];
/** A layer smaller than this (pixels high) is not worth its encoder. */
const MIN_LAYER_HEIGHT = 90;
const MIN_LAYER_BITRATE = 80_000;
const MAX_LAYER_BITRATE = 2_500_000;

/**
 * What `preferredVideoCodecs` asks for, as twilio-video.js reads it: `'auto'` (the default)
 * is VP8 with simulcast; a list names codecs in order of preference, and its first entry
 * decides: a bare name (`'H264'`) means one layer, `{codec, simulcast: true}` layers.
 * @param {PreferredVideoCodecs | undefined} preferred
 * @returns {VideoPlan}
 */
export function videoPlan(preferred) {
  if (preferred === undefined || preferred === 'auto') return { codec: 'VP8', simulcast: true };
  const first = Array.isArray(preferred) ? preferred[0] : undefined;
  if (typeof first === 'string') return { codec: first, simulcast: false };
  if (first && typeof first === 'object') return { codec: first.codec, simulcast: first.simulcast === true };
  return { codec: 'VP8', simulcast: true };
}

/**
 * How many layers a picture of `width` x `height` is split into: what Chromium's encoder
 * sends at that size (its simulcast table: 3 from 960x540, 2 from 480x270, else 1); an
 * encoding beyond that would be announced and never arrive.
 * @param {number} width
 * @param {number} height
 */
function layerCount(width, height) {
  const pixels = width * height;
  if (pixels >= 960 * 540) return 3;
  if (pixels >= 480 * 270) return 2;
  return 1;
}

/**
 * The simulcast layers for a camera track of `width` x `height`, lowest first: the full
 * picture, then half and a quarter of it, as many as `layerCount` allows. Fewer than two
 * layers would not help anyone: then none (the track is sent as one stream).
 * @param {number} width
 * @param {number} height
 * @returns {LayerRequest[]}
 */
export function simulcastLayers(width, height) {
  /** @type {LayerRequest[]} */
  const layers = [];
  const count = Math.min(PROTOCOL.MAX_LAYERS, layerCount(width, height));
  for (let i = 0; i < count; i++) {
    const scale = 2 ** i;
    const w = Math.round(width / scale / 2) * 2;
    const h = Math.round(height / scale / 2) * 2;
    if (h < MIN_LAYER_HEIGHT || w < 2) break;
    // About 3 bits per pixel per second for the full picture (1 Mbit/s at 640x480) and one
    // for the smaller layers, within sane bounds: a smaller layer is what a subscriber on a
    // poor link gets, so it must stay cheap (two 320x240 cameras at 80 kbit/s and their audio
    // come to about 290 kbit/s with every packet's headers, which leaves a 400 kbit/s link
    // the headroom an estimate needs), and a small tile shows its blur less.
    const bitsPerPixel = i === 0 ? 3 : 1;
    const bitrate = Math.min(MAX_LAYER_BITRATE, Math.max(MIN_LAYER_BITRATE, Math.round(w * h * bitsPerPixel)));
    layers.unshift({ rid: RIDS_FROM_TOP[i], width: w, height: h, max_bitrate: bitrate });
  }
  return layers.length >= 2 ? layers : [];
}

/**
 * Whether a track is camera video, not a shared screen or window (a captured display has
 * `displaySurface` in its settings; an application may also mark text or detail).
 * @param {MediaStreamTrack} track
 */
export function isCameraVideo(track) {
  if (track.kind !== 'video') return false;
  const settings = /** @type {MediaTrackSettings & {displaySurface?: string}} */ (track.getSettings());
  return settings.displaySurface === undefined && track.contentHint !== 'detail' && track.contentHint !== 'text';
}

/**
 * The layers to announce for a local video track, or none (`simulcast` off, not camera
 * video, or a picture too small to split).
 * @param {MediaStreamTrack} track
 * @param {VideoPlan} plan
 * @returns {LayerRequest[]}
 */
export function layersFor(track, plan) {
  if (!plan.simulcast || !isCameraVideo(track)) return [];
  const settings = track.getSettings();
  return simulcastLayers(settings.width || 640, settings.height || 480);
}

/**
 * Whether an encoding should run when the server says `wanted` rids are received: the wanted
 * ones, and the lowest layer too while anything is wanted (a subscriber that must step down
 * finds it running); nothing when nothing is wanted.
 * @param {string | undefined} rid
 * @param {Set<string>} wanted
 * @param {string | undefined} lowest
 */
function isActive(rid, wanted, lowest) {
  if (wanted.size === 0) return false;
  return rid !== undefined && (wanted.has(rid) || rid === lowest);
}

/**
 * Set up a video sender after the answer: each simulcast encoding's size (relative to the
 * track), bitrate and whether it runs (`wanted`, null before the server said), and the
 * degradation preference.
 * @param {RTCRtpSender} sender
 * @param {LayerRequest[]} layers as announced, lowest first (empty: one stream)
 * @param {Set<string> | null} wanted
 * @param {RTCDegradationPreference} degradation
 */
export async function configureSender(sender, layers, wanted, degradation) {
  try {
    const params = /** @type {RTCRtpSendParameters & {degradationPreference?: RTCDegradationPreference}} */ (sender.getParameters());
    params.degradationPreference = degradation;
    const encodings = params.encodings || [];
    if (!layers.length && encodings.length > 1) {
      // One stream on an m-line that carried simulcast before: the first encoding sends
      // the whole picture (the server pauses the others in its offers).
      encodings.forEach((encoding, i) => {
        encoding.active = i === 0;
        encoding.scaleResolutionDownBy = 1;
        delete encoding.maxBitrate;
      });
    }
    const top = layers[layers.length - 1];
    const lowest = layers.length ? layers[0].rid : undefined;
    for (const encoding of encodings) {
      const layer = layers.find((l) => l.rid === encoding.rid);
      if (!layer || !top) continue;
      encoding.scaleResolutionDownBy = Math.max(1, top.width / layer.width);
      if (layer.max_bitrate) encoding.maxBitrate = layer.max_bitrate;
      if (wanted) encoding.active = isActive(encoding.rid, wanted, lowest);
    }
    await sender.setParameters(params);
  } catch (err) {
    console.debug('edge-video: encoder settings not applied', err);
  }
}

/**
 * Pause the encodings nobody receives and resume the others (`send-layers`). A resumed
 * encoding starts with a keyframe.
 * @param {RTCRtpSender} sender
 * @param {Set<string>} wanted
 */
export async function applyWantedLayers(sender, wanted) {
  const params = sender.getParameters();
  const encodings = params.encodings || [];
  if (encodings.length < 2) return;
  const lowest = encodings[0].rid;
  let changed = false;
  for (const encoding of encodings) {
    const active = isActive(encoding.rid, wanted, lowest);
    if (encoding.active !== active) {
      encoding.active = active;
      changed = true;
    }
  }
  if (!changed) return;
  try {
    await sender.setParameters(params);
  } catch (err) {
    console.debug('edge-video: pausing layers failed', err);
  }
}
