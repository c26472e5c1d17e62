// p5rec demo page: plain ES module, no build step. It only talks to the HTTP
// API (/v1/*); every string from the server is put in the page as text.
/* global document, fetch, history, location, sessionStorage */

const $ = (id) => document.getElementById(id);
const KEY = 'p5rec-api-key';
const state = { models: [], user: null, searchSeq: 0, userSeq: 0, explainSeq: 0 };

/** Call the API; resolves to {ok, status, data}. A 401 shows the key form. */
async function api(path, body) {
  const headers = { accept: 'application/json' };
  const key = sessionStorage.getItem(KEY);
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method: body === undefined ? 'GET' : 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { ok: false, status: 0, data: { error: `cannot reach the server (${e.message})` } };
  }
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (res.status === 401) $('auth').hidden = false;
  return { ok: res.ok, status: res.status, data };
}

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function showError(msg) {
  $('error').textContent = msg;
  $('error').hidden = !msg;
}

const label = (it) => it.title ?? `item_${it.item}`;

/** A model's score, readable: 3 significant digits, integers (counts) with separators; the raw value on hover. */
function scoreText(score) {
  if (score === null || score === undefined || !Number.isFinite(score)) return '';
  if (Number.isInteger(score)) return score.toLocaleString('en-US');
  const a = Math.abs(score);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? score.toExponential(2) : score.toPrecision(3);
}

function itemButton(it) {
  return el('button', { type: 'button', class: 'item', title: `item_${it.item}`, onclick: () => explain(it) }, label(it));
}

// ---- models ---------------------------------------------------------------
async function loadModels() {
  const r = await api('/v1/models');
  if (!r.ok) return showError(r.data.error);
  const d = r.data.dataset;
  $('dataset').textContent = `${d.name}: ${d.users} users, ${d.items} items · models: ${r.data.models.map((m) => m.name).join(', ') || 'none'}`;
  state.models = r.data.models.filter((m) => m.capabilities.recommend);
}

// ---- user picker ------------------------------------------------------------
async function searchUsers(q) {
  const seq = ++state.searchSeq;
  const r = await api(`/v1/users?search=${encodeURIComponent(q)}&limit=50`);
  if (seq !== state.searchSeq) return; // a newer search is on its way
  if (!r.ok) return showError(r.data.error);
  const list = $('user-list');
  list.replaceChildren(...r.data.users.map((u) => el('li', {},
    el('button', { type: 'button', dataset: { user: u.user }, 'aria-current': String(u.user === state.user), onclick: () => selectUser(u.user) },
      `user_${u.user}`, el('span', { class: 'muted' }, ` · ${u.name ?? u.rawId} · ${u.interactions}`)))));
  $('user-total').textContent = r.data.total > r.data.users.length ? `${r.data.users.length} of ${r.data.total} users` : `${r.data.total} users`;
}

let searchTimer;
$('user-search').addEventListener('input', (e) => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => searchUsers(e.target.value), 150);
});

// ---- one user: history and each model's top-10 ------------------------------------
async function selectUser(token) {
  const seq = ++state.userSeq;
  state.user = token;
  if (location.hash !== `#user=${token}`) history.replaceState(null, '', `#user=${encodeURIComponent(token)}`);
  for (const b of document.querySelectorAll('#user-list button')) b.setAttribute('aria-current', String(b.dataset.user === token));
  showError('');
  $('explain').hidden = true;
  const r = await api(`/v1/users/${encodeURIComponent(token)}`);
  if (seq !== state.userSeq) return;
  if (!r.ok) return showError(r.data.error);
  const u = r.data;
  $('placeholder').hidden = true;
  $('user-card').hidden = false;
  // On a phone the results sit below the picker: bring the chosen user into view.
  if (document.documentElement.clientWidth <= 720) $('user-card').scrollIntoView({ block: 'start' });
  $('user-title').textContent = `user_${u.user}`;
  $('user-meta').textContent = `raw id ${u.rawId}${u.name ? ` · ${u.name}` : ''} · ${u.interactions} interactions`;
  // The held-out item above the history, so it is seen without scrolling a long history.
  $('held-out').hidden = false;
  $('held-out-item').replaceChildren(u.heldOut ? itemButton(u.heldOut) : 'none (this user has no test item)');
  $('history-count').textContent = String(u.history.length);
  // Newest first: what the models saw last is what matters most for the next item.
  $('history').replaceChildren(...[...u.history].reverse().map((h) => el('li', { class: h.split },
    itemButton(h), h.rating !== null ? el('span', { class: 'score' }, `${h.rating}★`) : null,
    h.split !== 'train' ? el('span', { class: `split ${h.split}` }, h.split) : null)));

  $('recs-box').hidden = false;
  const columns = state.models.map((m) => el('div', { class: 'model', dataset: { model: m.name } },
    el('h3', {}, `${m.name} `, el('span', { class: 'muted' }, `(${m.kind})`)),
    // A model fitted on the random rating split may have trained on the held-out item: its hits are not a fair test.
    m.trainSplit === 'rating' ? el('p', { class: 'summary muted', title: 'fitted on the random 0.8 rating split' }, 'rating split: may have seen the held-out item') : null,
    el('p', { class: 'summary muted', dataset: { role: 'result' } }, 'loading…'), el('ol', { 'aria-label': `${m.name}: top-10, score` })));
  $('recs').replaceChildren(...columns);
  if (!columns.length) $('recs').append(el('p', { class: 'muted' }, 'No loaded model can rank items.'));
  await Promise.all(state.models.map(async (m, j) => {
    const rr = await api('/v1/recommend', { user: u.user, model: m.name, k: 10, holdout: true });
    if (seq !== state.userSeq) return;
    const col = columns[j];
    if (!rr.ok) {
      col.querySelector('[data-role=result]').textContent = rr.data.error;
      return;
    }
    const hit = rr.data.items.findIndex((it) => it.hit);
    col.querySelector('[data-role=result]').textContent = !rr.data.heldOut ? 'no held-out item' : hit >= 0 ? `★ hit at rank ${hit + 1}` : 'held-out item not in top-10';
    col.querySelector('ol').replaceChildren(...rr.data.items.map((it) => el('li', { class: it.hit ? 'hit' : '' },
      it.hit ? el('span', { class: 'hit-mark', title: 'held-out test item' }, '★ ') : null, itemButton(it),
      it.score === null || it.score === undefined ? null : el('span', { class: 'score', title: `score ${it.score}` }, `score ${scoreText(it.score)}`))));
  }));
}

// ---- explanation (needs a generative P5 model) --------------------------------------
async function explain(it) {
  if (!state.user) return;
  const box = $('explain');
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest' });
  $('explain-title').textContent = label(it);
  $('explain-meta').textContent = `why would user_${state.user} like item_${it.item}?`;
  const text = $('explain-text');
  text.className = '';
  text.textContent = 'asking P5…';
  const source = $('explain-source');
  source.hidden = true;
  const seq = ++state.explainSeq;
  const [item, r] = await Promise.all([api(`/v1/items/${encodeURIComponent(it.item)}`), api('/v1/explain', { user: state.user, item: it.item })]);
  if (seq !== state.explainSeq) return; // another item was clicked meanwhile
  if (item.ok) {
    const i = item.data;
    $('explain-meta').textContent = [i.categories?.join(', '), i.brand, i.price !== null && i.price !== undefined ? `$${i.price}` : null, `${i.interactions} interactions`].filter(Boolean).join(' · ');
  }
  if (r.ok) {
    text.textContent = r.data.output || '(the model generated an empty text)';
    // Which model and template produced it; the full prompt on hover.
    source.textContent = `${r.data.model}${r.data.template ? ` · prompt ${r.data.template}` : ''}`;
    source.title = r.data.prompt;
    source.hidden = false;
  } else {
    text.className = 'unavailable';
    text.textContent = r.status === 501 ? `No explanation: ${r.data.error}` : r.data.error;
  }
}
$('explain-close').addEventListener('click', () => {
  $('explain').hidden = true;
});

// ---- API key ----------------------------------------------------------------
$('auth').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(KEY, $('api-key').value);
  $('auth').hidden = true;
  start();
});

async function start() {
  showError('');
  await loadModels();
  await searchUsers($('user-search').value);
  const m = /^#user=(.+)$/.exec(location.hash);
  if (m) await selectUser(decodeURIComponent(m[1]));
}

start();
