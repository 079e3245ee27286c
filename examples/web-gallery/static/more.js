// "Load more" appends the next page of tiles instead of leaving the page. Without JavaScript
// the link still works: it opens that page. Until a picture arrives its tile shows the
// picture's average colour (data-color, set through the style object: the CSP allows no
// inline style).
const paint = (root) => {
  for (const media of root.querySelectorAll('[data-color]')) {
    const loaded = media.tagName === 'IMG' ? media.complete && media.naturalWidth > 0 : false;
    if (!loaded) media.style.backgroundColor = media.dataset.color;
  }
};

document.addEventListener('DOMContentLoaded', () => {
  paint(document);
  const more = document.getElementById('load-more');
  const grid = document.getElementById('grid');
  if (!more || !grid) return;
  more.addEventListener('click', async (event) => {
    event.preventDefault();
    const next = more.dataset.next;
    const response = await fetch(`/tiles?page=${encodeURIComponent(next)}`);
    if (!response.ok) { window.location.href = more.href; return; }
    const page = await response.json();
    const before = grid.children.length;
    grid.insertAdjacentHTML('beforeend', page.html);
    for (const tile of [...grid.children].slice(before)) paint(tile);
    if (page.next) {
      more.dataset.next = page.next;
      more.href = `/?page=${page.next}`;
    } else {
      more.parentElement.remove();
    }
  });
});
