// Layout faults of the current page: elements outside the viewport, clipped content,
// horizontal scrolling. Evaluated by pagehelpers.layout_faults.
(() => {
  const vw = document.documentElement.clientWidth;
  const faults = [];
  if (document.documentElement.scrollWidth > window.innerWidth) {
    faults.push('horizontal scroll: ' + document.documentElement.scrollWidth + ' > ' + window.innerWidth);
  }
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('noscript, script, select')) continue;
    const cs = getComputedStyle(el);
    if (cs.display === 'none' || cs.visibility === 'hidden') continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const label = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ').join('.') : '');
    if (r.left < -1 || r.right > vw + 1) faults.push(label + ' outside the viewport: ' + Math.round(r.left) + '..' + Math.round(r.right) + ' of ' + vw);
    const clips = ['hidden', 'clip'];
    if ((clips.includes(cs.overflowX)) && el.scrollWidth > el.clientWidth + 1) faults.push(label + ' clips its content');
  }
  return faults;
})
