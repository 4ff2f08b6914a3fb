// @ts-check
// The join page's stage: one tile per participant (and one per shared screen), laid out so
// that every tile on the page fits the space left between the header and the controls.
// Grid view: up to 5x5 tiles (3x3 on a phone) per page, then pages. Speaker view, a pinned
// tile or a shared screen: one large tile and a filmstrip of the others. Names only ever
// go through textContent.

/** Largest grid on a page (5x5), and on a narrow screen (3x3). */
export const MAX_PER_PAGE = 25;
export const MAX_PER_PAGE_NARROW = 9;
const NARROW = 640;
const GAP = 6;
const FILMSTRIP_MAX = 120;

/**
 * The largest tiles of `aspect` (width / height) that fit `count` of them in a box.
 * @param {number} width
 * @param {number} height
 * @param {number} count
 * @param {number} [aspect]
 * @param {number} [gap] pixels between tiles
 * @returns {{cols: number, rows: number, width: number, height: number}}
 */
export function fitGrid(width, height, count, aspect = 16 / 9, gap = GAP) {
  let best = { cols: 1, rows: 1, width: 0, height: 0 };
  for (let cols = 1; cols <= Math.max(1, count); cols += 1) {
    const rows = Math.ceil(Math.max(1, count) / cols);
    const cellWidth = (width - gap * (cols - 1)) / cols;
    const cellHeight = (height - gap * (rows - 1)) / rows;
    const w = Math.floor(Math.max(0, Math.min(cellWidth, cellHeight * aspect)));
    if (w > best.width) best = { cols, rows, width: w, height: Math.floor(w / aspect) };
  }
  return best;
}

/** Grapheme clusters where the browser can find them (Intl.Segmenter), else code points. */
const segmenter = typeof Intl !== 'undefined' && 'Segmenter' in Intl ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;
/** @param {string} text */
const firstGrapheme = (text) => {
  if (!segmenter) return [...text][0] || '';
  for (const { segment } of segmenter.segment(text)) return segment;
  return '';
};

/**
 * Up to two initials of a name (first letters of its first and last words), for camera-off
 * tiles; whole graphemes, so an emoji sequence (a skin tone, a family, a flag) or a letter
 * with a combining accent is never split.
 * @param {string} name
 * @returns {string}
 */
export function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return '?';
  const letter = (/** @type {string | undefined} */ word) => firstGrapheme(word || '');
  const last = words.length > 1 ? letter(words[words.length - 1]) : '';
  return `${letter(words[0])}${last}`.toUpperCase();
}

/**
 * @typedef {object} TileOptions
 * @property {string} name shown as text
 * @property {boolean} [local] this browser's own tile
 * @property {boolean} [screen] a shared screen (featured for everyone else)
 * @property {string} [participantSid]
 */

export class Stage {
  /**
   * @param {HTMLElement} stage the container whose size the layout fills
   * @param {HTMLTemplateElement} template one tile
   */
  constructor(stage, template) {
    this.stage = stage;
    this.template = template;
    this.featured = /** @type {HTMLElement} */ (stage.querySelector('.featured'));
    this.grid = /** @type {HTMLElement} */ (stage.querySelector('.grid'));
    this.pager = /** @type {HTMLElement} */ (stage.querySelector('.pager'));
    /** @type {Map<string, HTMLElement>} key -> tile, in the order they came */
    this.tiles = new Map();
    /** @type {'grid' | 'speaker'} */
    this.view = 'grid';
    /** @type {string | null} */
    this.pinned = null;
    /** @type {string | null} the dominant speaker's tile (outlined; may be one's own) */
    this.dominant = null;
    /** @type {string | null} the last remote dominant speaker's tile (large in speaker view) */
    this.speaker = null;
    this.page = 0;
    this._scheduled = false;
    const prev = /** @type {HTMLElement} */ (this.pager.querySelector('#page-prev'));
    const next = /** @type {HTMLElement} */ (this.pager.querySelector('#page-next'));
    prev.addEventListener('click', () => this.turn(-1));
    next.addEventListener('click', () => this.turn(1));
    if (typeof ResizeObserver !== 'undefined') new ResizeObserver(() => this.layout()).observe(stage);
    window.addEventListener('resize', () => this.layout());
  }

  /**
   * @param {string} key
   * @param {TileOptions} options
   * @returns {HTMLElement}
   */
  add(key, options) {
    const existing = this.tiles.get(key);
    if (existing) return existing;
    const tile = /** @type {HTMLElement} */ (/** @type {Element} */ (this.template.content.firstElementChild).cloneNode(true));
    tile.dataset.key = key;
    if (options.participantSid) tile.dataset.sid = options.participantSid;
    const label = options.local ? `${options.name} (you)` : options.name;
    /** @type {HTMLElement} */ (tile.querySelector('.name')).textContent = label;
    tile.title = label.length > 200 ? `${label.slice(0, 200)}…` : label;
    /** @type {HTMLElement} */ (tile.querySelector('.initials')).textContent = initials(options.name);
    if (options.local) tile.classList.add('local');
    if (options.screen) tile.classList.add('screen');
    tile.classList.add('no-video');
    const pin = /** @type {HTMLElement} */ (tile.querySelector('.pin'));
    pin.setAttribute('aria-label', `Pin ${label.length > 80 ? `${label.slice(0, 80)}…` : label}`);
    pin.addEventListener('click', () => this.pin(this.pinned === key ? null : key));
    this.tiles.set(key, tile);
    this.grid.append(tile);
    this.layout();
    return tile;
  }

  /** @param {string} key */
  get(key) {
    return this.tiles.get(key);
  }

  /** @param {string} key */
  remove(key) {
    const tile = this.tiles.get(key);
    if (!tile) return;
    tile.remove();
    this.tiles.delete(key);
    if (this.pinned === key) this.pinned = null;
    if (this.dominant === key) this.dominant = null;
    if (this.speaker === key) this.speaker = null;
    this.layout();
  }

  clear() {
    for (const tile of this.tiles.values()) tile.remove();
    this.tiles.clear();
    this.pinned = null;
    this.dominant = null;
    this.speaker = null;
    this.page = 0;
    this.layout();
  }

  /** @param {string | null} key the tile to keep large, or none */
  pin(key) {
    this.pinned = key && this.tiles.has(key) ? key : null;
    for (const [k, tile] of this.tiles) {
      /** @type {HTMLElement} */ (tile.querySelector('.pin')).setAttribute('aria-pressed', String(k === this.pinned));
    }
    this.layout();
  }

  /** @param {'grid' | 'speaker'} view */
  setView(view) {
    this.view = view;
    this.layout();
  }

  /**
   * The dominant speaker's tile is outlined. In speaker view the large tile is the last
   * remote one: one's own speech outlines one's own tile but leaves the others' speaker
   * large (nobody needs to watch themselves), and silence keeps the last speaker.
   * @param {string | null} key the dominant speaker's tile, or none
   */
  setDominant(key) {
    this.dominant = key;
    for (const [k, tile] of this.tiles) tile.classList.toggle('speaking', k === key);
    const tile = key ? this.tiles.get(key) : undefined;
    if (key && tile && !tile.classList.contains('local')) this.speaker = key;
    if (this.view === 'speaker') this.layout();
  }

  /** @param {number} step */
  turn(step) {
    this.page += step;
    this.layout();
  }

  /** @returns {string | null} the tile shown large, if any */
  featuredKey() {
    if (this.pinned && this.tiles.has(this.pinned)) return this.pinned;
    const screens = [...this.tiles].filter(([, t]) => t.classList.contains('screen') && !t.classList.contains('local'));
    if (screens.length > 0) return /** @type {[string, HTMLElement]} */ (screens[screens.length - 1])[0];
    if (this.view !== 'speaker' || this.tiles.size < 2) return null;
    if (this.speaker && this.tiles.has(this.speaker)) return this.speaker;
    // Nobody else has spoken yet (or the speaker left): the first of the others.
    const remote = [...this.tiles].find(([, t]) => !t.classList.contains('local'));
    return remote ? remote[0] : null;
  }

  /** Lay the tiles out now (and again whenever the stage changes size). */
  layout() {
    // Moving a tile takes the focus from what is in it (a pin pressed from the keyboard).
    const focused = document.activeElement;
    const featuredKey = this.featuredKey();
    const featuring = featuredKey !== null;
    this.stage.classList.toggle('featuring', featuring);
    this.featured.hidden = !featuring;
    const others = [...this.tiles].filter(([k]) => k !== featuredKey).map(([, t]) => t);
    if (featuring) {
      const big = /** @type {HTMLElement} */ (this.tiles.get(featuredKey));
      if (big.parentElement !== this.featured) this.featured.replaceChildren(big);
      const inPlace = others.every((tile, i) => this.grid.children[i] === tile);
      if (!inPlace) this.grid.append(...others);
      for (const tile of others) tile.hidden = false;
      this.pager.hidden = true;
      this.grid.hidden = others.length === 0;
      const box = this.stage.getBoundingClientRect();
      // The filmstrip holds every other tile: one row on a wide screen, a few on a tall one.
      const portrait = box.height > box.width;
      const stripHeight = others.length ? Math.min(FILMSTRIP_MAX * (portrait ? 2 : 1), Math.floor(box.height * (portrait ? 0.3 : 0.2))) : 0;
      const strip = fitGrid(box.width - 12, stripHeight, others.length);
      this.grid.style.setProperty('--cols', String(strip.cols));
      for (const tile of others) this._size(tile, strip.width, strip.height);
      const room = this.featured.getBoundingClientRect();
      const fit = fitGrid(room.width, room.height, 1);
      this._size(big, fit.width, fit.height);
    } else {
      this.featured.replaceChildren();
      this.grid.hidden = false;
      const narrow = window.innerWidth <= NARROW;
      const perPage = narrow ? MAX_PER_PAGE_NARROW : MAX_PER_PAGE;
      const pages = Math.max(1, Math.ceil(others.length / perPage));
      this.page = Math.min(Math.max(0, this.page), pages - 1);
      this.pager.hidden = pages < 2;
      /** @type {HTMLElement} */ (this.pager.querySelector('#page-label')).textContent = `Page ${this.page + 1} of ${pages}`;
      /** @type {HTMLButtonElement} */ (this.pager.querySelector('#page-prev')).disabled = this.page === 0;
      /** @type {HTMLButtonElement} */ (this.pager.querySelector('#page-next')).disabled = this.page >= pages - 1;
      const shown = others.slice(this.page * perPage, (this.page + 1) * perPage);
      // In the order they came (an unpinned tile goes back to its place).
      const inPlace = others.every((tile, i) => this.grid.children[i] === tile);
      if (!inPlace) this.grid.append(...others);
      for (const tile of others) tile.hidden = !shown.includes(tile);
      const box = this.grid.getBoundingClientRect();
      const portrait = box.height > box.width * 1.2;
      const fit = fitGrid(box.width, box.height, shown.length, portrait && shown.length <= 2 ? 4 / 3 : 16 / 9);
      this.grid.style.setProperty('--cols', String(fit.cols));
      for (const tile of shown) this._size(tile, fit.width, fit.height);
    }
    if (focused instanceof HTMLElement && focused !== document.activeElement && this.stage.contains(focused) && !focused.closest('[hidden]')) {
      focused.focus({ preventScroll: true });
    }
    // A moved <video> pauses (the spec's "removed from a document"): play it again.
    for (const video of this.stage.querySelectorAll('video')) {
      if (video.paused && video.srcObject) video.play().catch(() => {});
    }
  }

  /**
   * @param {HTMLElement} tile
   * @param {number} width
   * @param {number} height
   */
  _size(tile, width, height) {
    tile.style.setProperty('--tile-w', `${Math.max(0, width)}px`);
    tile.style.setProperty('--tile-h', `${Math.max(0, height)}px`);
    tile.classList.toggle('small', width < 200);
    tile.classList.toggle('tiny', width < 100);
  }
}
