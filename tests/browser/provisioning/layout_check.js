// Layout faults of the current page: elements outside the viewport, clipped content,
// horizontal scrolling. Evaluated by pagehelpers.layout_faults. Optional checks:
// `inside`: selectors whose visible elements must lie wholly inside the viewport (height too);
// `apart`: selectors whose visible elements must not overlap one another.
((options) => {
  const { inside = [], apart = [] } = options || {};
  const vw = document.documentElement.clientWidth;
  const vh = Math.min(document.documentElement.clientHeight, window.innerHeight);
  const faults = [];
  const visible = (el) => {
    const cs = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return cs.display !== 'none' && cs.visibility !== 'hidden' && (r.width > 0 || r.height > 0);
  };
  const labelOf = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '');
  if (document.documentElement.scrollWidth > window.innerWidth) {
    faults.push('horizontal scroll: ' + document.documentElement.scrollWidth + ' > ' + window.innerWidth);
  }
  for (const el of document.querySelectorAll('body *')) {
    // Form controls scroll their own text: a long value in a text field is no fault.
    if (el.closest('noscript, script, select, input, textarea')) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const label = labelOf(el);
    if (r.left < -1 || r.right > vw + 1) faults.push(label + ' outside the viewport: ' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + vw);
    const clips = ['hidden', 'clip'];
    // A one-line text cut with an ellipsis shows that it is cut: not a fault.
    if ((clips.includes(cs.overflowX)) && el.scrollWidth > el.clientWidth + 1 && cs.textOverflow !== 'ellipsis') faults.push(label + ' clips its content');
  }
  for (const selector of inside) {
    for (const el of document.querySelectorAll(selector)) {
      if (!visible(el)) continue;
      const r = el.getBoundingClientRect();
      if (r.top < -1 || r.bottom > vh + 1 || r.left < -1 || r.right > vw + 1) {
        faults.push(labelOf(el) + ' not inside the ' + vw + 'x' + vh + ' viewport: ' +
          [r.left, r.top, r.right, r.bottom].map(Math.round).join(','));
      }
    }
  }
  const boxes = [...document.querySelectorAll(apart.join(',') || ':not(*)')].filter(visible);
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) {
      const a = boxes[i], b = boxes[j];
      if (a.contains(b) || b.contains(a)) continue;
      const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
      const w = Math.min(p.right, q.right) - Math.max(p.left, q.left);
      const h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
      if (w > 1 && h > 1) faults.push(labelOf(a) + ' overlaps ' + labelOf(b));
    }
  }
  return faults;
})
