// Each timeline: a zoom that widens the plot inside its scroll box (the plot is drawn in
// percent of its width, so nothing is redrawn), a button that zooms onto the operations the
// check names, and a filter that dims the operations whose text lacks a string (a key, a
// process).
for (const tl of document.querySelectorAll('.timeline-block')) {
  const scroll = tl.querySelector('.scroll');
  const inner = tl.querySelector('.inner');
  const zoom = tl.querySelector('.zoom');
  const shown = tl.querySelector('.zv');
  const setZoom = (v, centre) => {
    const z = Math.pow(2, v);
    const at = centre ?? (scroll.scrollLeft + scroll.clientWidth / 2) / inner.offsetWidth;
    inner.style.width = (100 * z) + '%';
    scroll.scrollLeft = at * inner.offsetWidth - scroll.clientWidth / 2;
    shown.textContent = '×' + (z < 10 ? z.toFixed(1) : Math.round(z));
    tl.classList.toggle('zoomed', z >= 4);
    tl.classList.toggle('zoomed-more', z >= 16);
  };
  zoom.addEventListener('input', () => setZoom(+zoom.value));
  const focus = tl.querySelector('.focus');
  if (focus) {
    focus.addEventListener('click', () => {
      zoom.value = zoom.max;
      setZoom(+zoom.max, +focus.dataset.at);
    });
  }
  const filter = tl.querySelector('.filter');
  let ops = null;
  filter.addEventListener('input', () => {
    ops = ops || Array.from(tl.querySelectorAll('rect.op'), r => [r, r.textContent]);
    const q = filter.value;
    for (const [r, text] of ops) r.classList.toggle('dim', q !== '' && !text.includes(q));
  });
}
