// igdisplay feeds widget: <ig-feed feed="ID" layout="grid|carousel" columns="3">.
// No framework, no cookie, no request but to the service this script came from. Works on a
// page with a strict Content Security Policy: no inline script, no inline style (the styles
// are a constructed stylesheet adopted by the shadow root; sizes and colours are set through
// the CSSOM).
(() => {
  'use strict';
  const script = document.currentScript;
  if (!script || !('customElements' in window) || customElements.get('ig-feed')) return;
  const service = new URL(script.src).origin;

  const css = `
:host { display: block; --ig-gap: 4px; --ig-columns: 3; font: inherit; color: inherit; }
*, *::before, *::after { box-sizing: border-box; }
ul { list-style: none; margin: 0; padding: 0; }
.grid { display: grid; grid-template-columns: repeat(var(--ig-columns), 1fr); gap: var(--ig-gap); }
.carousel { display: flex; gap: var(--ig-gap); overflow-x: auto; scroll-snap-type: x mandatory; }
.carousel > li { flex: 0 0 calc((100% - (var(--ig-columns) - 1) * var(--ig-gap)) / var(--ig-columns)); scroll-snap-align: start; }
.tile { position: relative; display: block; width: 100%; aspect-ratio: 1; padding: 0; border: 0; cursor: pointer; overflow: hidden; background: #ddd; }
.tile:focus-visible, .lightbox button:focus-visible { outline: 3px solid #1a73e8; outline-offset: 2px; }
.tile img { position: relative; display: block; width: 100%; height: 100%; object-fit: cover; }
.tile canvas { position: absolute; inset: 0; width: 100%; height: 100%; }
.badge { position: absolute; top: 6px; right: 6px; padding: 2px 6px; border-radius: 4px; background: rgba(0,0,0,.7); color: #fff; font-size: 12px; }
.nav { display: flex; justify-content: space-between; margin-top: var(--ig-gap); }
.nav button, .lightbox button { min-width: 44px; min-height: 44px; border: 0; border-radius: 4px; background: #222; color: #fff; font: inherit; cursor: pointer; }
.lightbox { position: fixed; inset: 0; z-index: 2147483647; display: flex; align-items: center; justify-content: center; gap: 8px; padding: 16px; background: rgba(0,0,0,.85); }
.lightbox[hidden] { display: none; }
.frame { display: flex; flex-direction: column; max-width: min(90vw, 1080px); max-height: 90vh; background: #000; color: #fff; }
.frame img, .frame video { display: block; max-width: 100%; max-height: 75vh; margin: auto; object-fit: contain; }
.frame p { margin: 0; padding: 8px 12px; max-height: 15vh; overflow: auto; background: #111; color: #fff; }
.frame a { color: #9cf; }
.close { position: absolute; top: 16px; right: 16px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;
  let sheet = null;
  const styles = () => {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
    }
    return sheet;
  };

  // BlurHash (https://blurha.sh): the post's placeholder, decoded onto a small canvas under
  // its picture until the picture loads. A hash that does not decode paints nothing.
  const B83 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~';
  const b83 = (text, from, to) => {
    let value = 0;
    for (let i = from; i < to; i++) {
      const digit = B83.indexOf(text[i]);
      if (digit < 0) return NaN;
      value = value * 83 + digit;
    }
    return value;
  };
  const linear = (c) => { const v = c / 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const srgb = (v) => {
    const x = Math.min(Math.max(v, 0), 1);
    return Math.trunc(x <= 0.0031308 ? x * 12.92 * 255 + 0.5 : (1.055 * x ** (1 / 2.4) - 0.055) * 255 + 0.5);
  };
  const SIDE = 32;
  const decode = (hash) => {
    if (typeof hash !== 'string' || hash.length < 6) return null;
    const size = b83(hash, 0, 1);
    const nx = (size % 9) + 1;
    const ny = Math.floor(size / 9) + 1;
    if (hash.length !== 4 + 2 * nx * ny) return null;
    const max = (b83(hash, 1, 2) + 1) / 166;
    const dc = b83(hash, 2, 6);
    const factors = [[linear(dc >> 16), linear((dc >> 8) & 255), linear(dc & 255)]];
    for (let i = 1; i < nx * ny; i++) {
      const ac = b83(hash, 4 + i * 2, 6 + i * 2);
      factors.push([Math.floor(ac / 361), Math.floor(ac / 19) % 19, ac % 19]
        .map((q) => { const v = (q - 9) / 9; return Math.sign(v) * v * v * max; }));
    }
    if (factors.some((f) => f.some(Number.isNaN))) return null;
    const pixels = new Uint8ClampedArray(SIDE * SIDE * 4);
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        const rgb = [0, 0, 0];
        for (let j = 0; j < ny; j++) {
          for (let i = 0; i < nx; i++) {
            const basis = Math.cos((Math.PI * x * i) / SIDE) * Math.cos((Math.PI * y * j) / SIDE);
            factors[i + j * nx].forEach((f, c) => { rgb[c] += f * basis; });
          }
        }
        pixels.set([srgb(rgb[0]), srgb(rgb[1]), srgb(rgb[2]), 255], 4 * (x + y * SIDE));
      }
    }
    return pixels;
  };
  const placeholder = (hash) => {
    const pixels = decode(hash);
    if (!pixels) return null;
    const canvas = document.createElement('canvas');
    canvas.width = SIDE;
    canvas.height = SIDE;
    canvas.setAttribute('aria-hidden', 'true');
    const context = canvas.getContext('2d');
    if (!context) return null;
    context.putImageData(new ImageData(pixels, SIDE, SIDE), 0, 0);
    return canvas;
  };

  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key in node && typeof value !== 'string') node[key] = value;
      else node.setAttribute(key, value);
    }
    node.append(...children);
    return node;
  };

  class IgFeed extends HTMLElement {
    static get observedAttributes() { return ['feed', 'layout', 'columns']; }

    constructor() {
      super();
      this.root = this.attachShadow({ mode: 'open' });
      this.root.adoptedStyleSheets = [styles()];
      this.items = [];
      this.current = -1;
      this.opener = null;
    }

    connectedCallback() { this.load(); }

    attributeChangedCallback(name, before, after) {
      if (before === after || !this.isConnected) return;
      if (name === 'feed') this.load();
      else this.render();
    }

    async load() {
      const id = this.getAttribute('feed') || '';
      if (!/^[0-9a-f]{32}$/.test(id)) return this.fail('invalid feed id');
      let answer;
      try {
        const response = await fetch(`${service}/v1/feeds/${id}?limit=100`, {
          credentials: 'omit', mode: 'cors', referrerPolicy: 'strict-origin-when-cross-origin',
        });
        if (!response.ok) return this.fail(`the feed answered ${response.status}`);
        answer = await response.json();
      } catch (error) {
        return this.fail(String(error));
      }
      this.items = (answer.items || []).filter((item) => item.image && item.image.url);
      this.dataset.state = answer.state || '';
      this.dispatchEvent(new CustomEvent('ig-feed-load', { detail: { state: answer.state, items: this.items.length } }));
      this.render();
    }

    fail(reason) {
      this.items = [];
      this.root.replaceChildren();
      this.dataset.state = 'error';
      this.dispatchEvent(new CustomEvent('ig-feed-error', { detail: { reason } }));
    }

    render() {
      const layout = this.getAttribute('layout') === 'carousel' ? 'carousel' : 'grid';
      const columns = Math.min(Math.max(parseInt(this.getAttribute('columns') || '3', 10) || 3, 1), 8);
      this.style.setProperty('--ig-columns', String(columns));
      const list = el('ul', { class: layout, role: 'list', 'aria-label': 'Instagram posts' });
      this.items.forEach((item, index) => list.append(el('li', {}, this.tile(item, index))));
      const parts = [list];
      if (layout === 'carousel') {
        const scroll = (direction) => list.scrollBy({ left: direction * list.clientWidth, behavior: 'smooth' });
        parts.push(el('div', { class: 'nav' },
          el('button', { type: 'button', class: 'prev', 'aria-label': 'Previous posts', text: '‹', onclick: () => scroll(-1) }),
          el('button', { type: 'button', class: 'next', 'aria-label': 'Next posts', text: '›', onclick: () => scroll(1) })));
      }
      this.lightbox = el('div', { class: 'lightbox', role: 'dialog', 'aria-modal': 'true', 'aria-label': 'Post', hidden: '' });
      this.lightbox.addEventListener('keydown', (event) => this.key(event));
      this.lightbox.addEventListener('click', (event) => { if (event.target === this.lightbox) this.close(); });
      parts.push(this.lightbox);
      this.root.replaceChildren(...parts);
    }

    tile(item, index) {
      const image = item.image;
      const small = (image.variants || []).find((v) => v.width >= 320) || image;
      const img = el('img', { alt: '', loading: 'lazy', decoding: 'async', width: String(small.width || 320), height: String(small.height || 320), src: small.url || image.url });
      if (image.color) img.style.backgroundColor = image.color;
      const label = item.alt || item.caption || 'Instagram post';
      const blur = placeholder(image.blurhash);
      const button = el('button', { type: 'button', class: 'tile', 'aria-label': `Open post: ${label.slice(0, 120)}`, onclick: () => this.open(index, button) }, ...(blur ? [blur, img] : [img]));
      if (image.color) button.style.backgroundColor = image.color;
      if (item.type === 'video') button.append(el('span', { class: 'badge', 'aria-hidden': 'true', text: '▶' }));
      if (item.type === 'album') button.append(el('span', { class: 'badge', 'aria-hidden': 'true', text: '❐' }));
      return button;
    }

    open(index, opener) {
      this.opener = opener || this.opener;
      this.show(index);
      this.lightbox.removeAttribute('hidden');
      this.lightbox.querySelector('.close').focus();
    }

    show(index) {
      const count = this.items.length;
      this.current = ((index % count) + count) % count;
      const item = this.items[this.current];
      const media = item.playable && item.video
        ? el('video', { controls: true, playsInline: true, preload: 'metadata', poster: item.image.url, src: item.video, 'aria-label': item.alt || 'Video' })
        : el('img', { alt: item.alt || item.caption || 'Instagram post', src: item.image.url, width: String(item.image.width), height: String(item.image.height) });
      if (item.image.color) media.style.backgroundColor = item.image.color;
      const caption = el('p', {}, item.caption || '');
      if (item.permalink) caption.append(' ', el('a', { href: item.permalink, target: '_blank', rel: 'noopener noreferrer', text: 'View on Instagram' }));
      this.lightbox.replaceChildren(
        el('button', { type: 'button', class: 'prev', 'aria-label': 'Previous post', text: '‹', onclick: () => this.move(-1) }),
        el('figure', { class: 'frame' }, media, el('figcaption', {}, caption)),
        el('button', { type: 'button', class: 'next', 'aria-label': 'Next post', text: '›', onclick: () => this.move(1) }),
        el('button', { type: 'button', class: 'close', 'aria-label': 'Close', text: '×', onclick: () => this.close() }),
        el('span', { class: 'sr', 'aria-live': 'polite', text: `Post ${this.current + 1} of ${count}` }));
    }

    move(step) {
      const focused = this.root.activeElement && this.root.activeElement.className;
      this.show(this.current + step);
      const again = focused && this.lightbox.querySelector(`.${focused.split(' ')[0]}`);
      (again || this.lightbox.querySelector('.close')).focus();
    }

    close() {
      const video = this.lightbox.querySelector('video');
      if (video) video.pause();
      this.lightbox.setAttribute('hidden', '');
      this.lightbox.replaceChildren();
      this.current = -1;
      if (this.opener) this.opener.focus();
    }

    key(event) {
      if (event.key === 'Escape') { event.preventDefault(); this.close(); }
      else if (event.key === 'ArrowRight') { event.preventDefault(); this.move(1); }
      else if (event.key === 'ArrowLeft') { event.preventDefault(); this.move(-1); }
      else if (event.key === 'Tab') {
        // Focus stays in the dialog while it is open.
        const stops = [...this.lightbox.querySelectorAll('button, a, video')];
        const at = stops.indexOf(this.root.activeElement);
        const next = event.shiftKey ? (at <= 0 ? stops.length - 1 : at - 1) : (at + 1) % stops.length;
        event.preventDefault();
        stops[next].focus();
      }
    }
  }

  customElements.define('ig-feed', IgFeed);
})();
