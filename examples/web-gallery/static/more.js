// "Load more" appends the next page of tiles instead of leaving the page. Without JavaScript
// the link still works: it opens that page.
document.addEventListener('DOMContentLoaded', () => {
  const more = document.getElementById('load-more');
  const grid = document.getElementById('grid');
  if (!more || !grid) return;
  more.addEventListener('click', async (event) => {
    event.preventDefault();
    const next = more.dataset.next;
    const response = await fetch(`/tiles?page=${encodeURIComponent(next)}`);
    if (!response.ok) { window.location.href = more.href; return; }
    const page = await response.json();
    grid.insertAdjacentHTML('beforeend', page.html);
    if (page.next) {
      more.dataset.next = page.next;
      more.href = `/?page=${page.next}`;
    } else {
      more.parentElement.remove();
    }
  });
});
