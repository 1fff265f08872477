// roost-keeper's lifecycle dashboard: the ManagedRoosts a bearer token may
// read, kept current by the lifecycle API's event stream (fetch + a stream
// reader, so the token travels in a header, never in a URL). Served with a
// strict Content-Security-Policy: no inline code or styles, data is only
// ever written with textContent.
'use strict';

const TOKEN_KEY = 'roost-keeper.token';
const MAX_TIMELINE = 50;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const SUMMARY_EVENTS = new Set(['lifecycle', 'phase', 'health', 'validated', 'roost']);

const $ = (id) => document.getElementById(id);

const state = {
  token: null,
  roosts: new Map(), // "namespace/name" -> RoostSummary
  lastEventId: null, // the list's, then the last one the stream sent
  session: 0, // bumped on sign-in and sign-out: older loops and answers stop
  abort: null, // the open stream's AbortController
  selected: null, // "namespace/name" of the open detail
  detailSeq: 0,
  detailLoading: false,
  streamedRecords: [], // records the stream sent while the detail was loading
  phaseSince: null, // the open detail's, from its lifecycle
  shownValidated: null, // what the findings shown were fetched for
};

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// --- DOM helpers -----------------------------------------------------------

// An element with attributes (set one by one, never as HTML) and children
// (strings become text nodes).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) el.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const key = (ns, name) => `${ns}/${name}`;
const slug = (text) => String(text || 'unknown').toLowerCase().replace(/[^a-z0-9]+/g, '-');

function showMessage(text, kind = 'info') {
  const el = $('message');
  el.textContent = text || '';
  el.className = `message ${kind}`;
  el.hidden = !text;
}

function setLive(text) {
  const el = $('live-status');
  el.textContent = text;
  el.className = `live-status ${slug(text)}`;
}

function relative(ts) {
  const at = Date.parse(ts);
  if (Number.isNaN(at)) return '';
  const s = Math.round((Date.now() - at) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// A <time> showing "3 min ago", the exact time in its tooltip; kept fresh by a timer.
// A Go duration ("1h2m3.5s") as "1 h 2 min 4 s" (whole seconds; under a minute one decimal).
function duration(text) {
  const unit = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, 'µs': 1e-6, ns: 1e-9 };
  const parts = String(text).match(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g);
  if (!parts) return String(text);
  let seconds = 0;
  for (const part of parts) {
    const [, n, u] = part.match(/(\d+(?:\.\d+)?)(.+)/);
    seconds += Number(n) * unit[u];
  }
  if (seconds < 60) return `${Math.round(seconds * 10) / 10} s`;
  const s = Math.round(seconds);
  const [hh, mm, ss] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  return [hh && `${hh} h`, (hh || mm) && `${mm} min`, `${ss} s`].filter(Boolean).join(' ');
}

function timeEl(ts) {
  if (!ts) return h('span', { class: 'muted' }, '—');
  const exact = new Date(ts);
  const title = Number.isNaN(exact.getTime()) ? ts : exact.toLocaleString();
  return h('time', { datetime: ts, title, 'data-relative': '' }, relative(ts));
}

function refreshTimes() {
  for (const el of document.querySelectorAll('time[data-relative]')) {
    el.textContent = relative(el.getAttribute('datetime'));
  }
}

function badge(text, kind) {
  return h('span', { class: `badge ${kind}` }, text);
}

// --- API ---------------------------------------------------------------------

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${state.token}`, Accept: 'application/json' },
    cache: 'no-store',
    credentials: 'omit',
  });
  if (!response.ok) throw new HttpError(response.status, await errorMessage(response));
  return response.json();
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.message || body.error || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

// 401: back to the token form; 403 and the rest: the server's message.
function failed(err, what) {
  if (err instanceof HttpError && err.status === 401) {
    signOut('token rejected', 'error');
  } else if (err instanceof HttpError && err.status === 403) {
    showMessage(`Forbidden: ${err.message}`, 'error');
  } else if (err.name !== 'AbortError') {
    showMessage(`${what}: ${err.message}`, 'error');
  }
}

// --- the list ------------------------------------------------------------------

function validatedCell(validated) {
  if (!validated) return [badge('—', 'unknown')];
  const kind = { True: 'ok', False: 'bad' }[validated.status] || 'unknown';
  return [
    badge(validated.status, kind),
    validated.reason ? h('span', { class: 'reason', title: validated.message || '' }, validated.reason) : null,
  ];
}

function healthCell(health) {
  const kind = { healthy: 'ok', unhealthy: 'bad', degraded: 'warn' }[health] || 'unknown';
  return [badge(health || '—', kind)];
}

function phaseCell(phase) {
  return [badge(phase || '—', `phase phase-${slug(phase)}`)];
}

function chartText(chart) {
  if (!chart || !chart.name) return '—';
  return chart.version ? `${chart.name}@${chart.version}` : chart.name;
}

function fillCells(row, roost) {
  const cells = {
    phase: phaseCell(roost.phase),
    health: healthCell(roost.health),
    validated: validatedCell(roost.validated),
    chart: [chartText(roost.chart)],
    activity: [timeEl(roost.lastActivity)],
  };
  for (const [field, content] of Object.entries(cells)) {
    row.querySelector(`[data-field="${field}"]`).replaceChildren(...content.filter(Boolean));
  }
}

function rowFor(roost) {
  const id = key(roost.namespace, roost.name);
  const open = h('button', { type: 'button', class: 'roost-link', 'aria-controls': 'detail' }, roost.name);
  open.addEventListener('click', () => openDetail(id));
  const row = h('tr', { 'data-roost': id, class: state.selected === id ? 'selected' : null },
    h('th', { scope: 'row' }, open),
    ...['phase', 'health', 'validated', 'chart', 'activity'].map((f) => h('td', { 'data-field': f })));
  fillCells(row, roost);
  return row;
}

// Every table anew (one per namespace), keeping the focused roost focused.
function renderList() {
  const focused = document.activeElement?.closest?.('tr[data-roost]')?.dataset.roost;
  const filter = $('ns-filter').value.trim().toLowerCase();
  const byNamespace = new Map();
  for (const roost of [...state.roosts.values()].sort(
    (a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name))) {
    if (filter && !roost.namespace.toLowerCase().includes(filter)) continue;
    if (!byNamespace.has(roost.namespace)) byNamespace.set(roost.namespace, []);
    byNamespace.get(roost.namespace).push(roost);
  }
  const tables = [...byNamespace].map(([ns, roosts]) => h('section', { class: 'namespace', 'data-namespace': ns },
    h('table', {},
      h('caption', {}, 'namespace ', h('strong', {}, ns), ` · ${roosts.length}`),
      h('thead', {}, h('tr', {}, ['Name', 'Phase', 'Health', 'Validated', 'Chart', 'Last activity']
        .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, roosts.map(rowFor)))));
  if (tables.length === 0) {
    tables.push(h('p', { class: 'empty' }, state.roosts.size
      ? 'No namespace matches the filter.'
      : 'No ManagedRoost in the namespaces this token may read.'));
  }
  $('tables').replaceChildren(...tables);
  const shown = [...byNamespace.values()].reduce((n, r) => n + r.length, 0);
  $('count').textContent = `${shown} of ${state.roosts.size} roosts`;
  if (focused) document.querySelector(`tr[data-roost="${CSS.escape(focused)}"] .roost-link`)?.focus();
}

// A summary after a change: its row updated in place (or the tables redrawn for a new one).
function upsert(roost) {
  const id = key(roost.namespace, roost.name);
  const isNew = !state.roosts.has(id);
  state.roosts.set(id, roost);
  const row = document.querySelector(`tr[data-roost="${CSS.escape(id)}"]`);
  if (isNew || !row) {
    renderList();
  } else {
    fillCells(row, roost);
    row.classList.remove('changed');
    void row.offsetWidth; // restart the highlight
    row.classList.add('changed');
    row.addEventListener('animationend', () => row.classList.remove('changed'), { once: true });
  }
}

function remove(ns, name) {
  const id = key(ns, name);
  state.roosts.delete(id);
  renderList();
  if (state.selected === id) {
    showMessage(`${id} was deleted.`, 'info');
    closeDetail();
  }
}

async function loadList(session) {
  const list = await api('/api/v1/roosts');
  if (session !== state.session) return;
  state.roosts = new Map(list.items.map((r) => [key(r.namespace, r.name), r]));
  if (list.lastEventId !== undefined && list.lastEventId !== null) state.lastEventId = String(list.lastEventId);
  renderList();
}

// --- the detail panel ------------------------------------------------------------

function facts(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

function renderSummary(roost, lifecycle) {
  const validated = roost.validated;
  facts($('detail-summary'), [
    ['Phase', [phaseCell(roost.phase), ' since ', timeEl(lifecycle?.phaseSince)]],
    ['Health', healthCell(roost.health)],
    ['Validated', [validatedCell(validated), validated?.message ? h('div', { class: 'muted' }, validated.message) : null]],
    ['Chart', chartText(roost.chart)],
    ['Generation', String(roost.generation ?? '—')],
    ['Created', timeEl(roost.createdAt)],
  ]);
  const counts = Object.entries(roost.counts || {});
  $('detail-counts').replaceChildren(...(counts.length
    ? counts.map(([type, n]) => h('span', { class: 'chip', 'data-count-type': type }, `${type} ${n}`))
    : [h('span', { class: 'muted' }, 'No records yet.')]));
}

const recordKey = (record) => JSON.stringify([record.type, record.timestamp, record.message]);

function recordItem(record) {
  const item = h('li', { 'data-record-type': record.type },
    h('div', { class: 'record-head' }, badge(record.type, `record record-${slug(record.type)}`), ' ', timeEl(record.timestamp)),
    h('div', { class: 'record-message' }, record.message || ''));
  item.recordKey = recordKey(record);
  return item;
}

// A record on top of the timeline, unless it is there already (a replay after a reconnect).
function addRecord(record) {
  const timeline = $('detail-timeline');
  const key = recordKey(record);
  if ([...timeline.children].some((item) => item.recordKey === key)) return;
  timeline.prepend(recordItem(record));
  while (timeline.children.length > MAX_TIMELINE) timeline.lastElementChild.remove();
}

function renderLifecycle(lifecycle) {
  const durations = Object.entries(lifecycle.phaseDurations || {});
  facts($('detail-durations'), durations.length
    ? durations.map(([phase, spent]) => [phase, h('span', { title: spent }, duration(spent))])
    : [['—', 'nothing measured yet']]);
  const records = [...(lifecycle.records || [])].reverse();
  $('detail-timeline').replaceChildren(...records.map(recordItem));
}

function renderFindings(result) {
  const findings = result.findings || [];
  $('detail-findings-state').textContent = `Generation ${result.generation ?? '—'}: ${result.valid ? 'valid' : 'invalid'}`
    + (findings.length ? `, ${findings.length} finding${findings.length === 1 ? '' : 's'}` : ', no findings');
  $('detail-findings').replaceChildren(...findings.map((f) => h('li', { class: `finding ${slug(f.level)}`, 'data-finding-code': f.code },
    h('div', { class: 'finding-head' }, badge(f.level, { error: 'bad', warning: 'warn' }[f.level] || 'unknown'), ' ',
      h('code', { class: 'code' }, f.code), f.field ? [' at ', h('code', {}, f.field)] : null),
    h('p', {}, f.message),
    f.summary ? h('p', { class: 'muted' }, f.summary) : null,
    f.fix ? h('p', { class: 'fix' }, h('strong', {}, 'Fix: '), f.fix) : null)));
}

async function loadDetail(id) {
  const seq = ++state.detailSeq;
  const roost = state.roosts.get(id);
  if (!roost) return;
  state.detailLoading = true;
  state.streamedRecords = [];
  const base = `/api/v1/namespaces/${encodeURIComponent(roost.namespace)}/roosts/${encodeURIComponent(roost.name)}`;
  try {
    const [lifecycle, findings] = await Promise.all([api(`${base}/lifecycle?last=${MAX_TIMELINE}`), api(`${base}/findings`)]);
    if (seq !== state.detailSeq || state.selected !== id) return;
    state.phaseSince = lifecycle.phaseSince;
    renderSummary(state.roosts.get(id) || roost, lifecycle);
    renderLifecycle(lifecycle);
    for (const record of state.streamedRecords) addRecord(record);
    renderFindings(findings);
    state.shownValidated = validatedKey(state.roosts.get(id) || roost);
  } catch (err) {
    if (seq === state.detailSeq) failed(err, `Details of ${id}`);
  } finally {
    if (seq === state.detailSeq) state.detailLoading = false;
  }
}

async function refreshFindings(roost) {
  const id = key(roost.namespace, roost.name);
  state.shownValidated = validatedKey(roost);
  try {
    const findings = await api(`/api/v1/namespaces/${encodeURIComponent(roost.namespace)}/roosts/${encodeURIComponent(roost.name)}/findings`);
    if (state.selected === id) renderFindings(findings);
  } catch (err) {
    failed(err, `Findings of ${id}`);
  }
}

const validatedKey = (roost) => JSON.stringify([roost.generation, roost.validated]);

function openDetail(id) {
  state.selected = id;
  for (const row of document.querySelectorAll('tr[data-roost]')) row.classList.toggle('selected', row.dataset.roost === id);
  $('detail-title').textContent = id;
  for (const list of ['detail-summary', 'detail-counts', 'detail-durations', 'detail-findings', 'detail-timeline']) $(list).replaceChildren();
  $('detail-findings-state').textContent = 'Loading…';
  $('detail').hidden = false;
  $('layout').classList.add('with-detail');
  $('detail-title').focus();
  loadDetail(id);
}

function closeDetail() {
  const id = state.selected;
  state.selected = null;
  state.detailSeq++;
  $('detail').hidden = true;
  $('layout').classList.remove('with-detail');
  for (const row of document.querySelectorAll('tr.selected')) row.classList.remove('selected');
  if (id) document.querySelector(`tr[data-roost="${CSS.escape(id)}"] .roost-link`)?.focus();
}

// The open detail follows the stream: new records on top, findings again when validation changed.
function followDetail(name, data) {
  const roost = data.roost;
  if (!roost || state.selected !== key(roost.namespace, roost.name)) return;
  if (name === 'phase') {
    loadDetail(state.selected);
    return;
  }
  renderSummary(roost, { phaseSince: state.phaseSince });
  if (name === 'lifecycle' && data.record) {
    if (state.detailLoading) state.streamedRecords.push(data.record);
    addRecord(data.record);
  }
  if (name === 'validated' || validatedKey(roost) !== state.shownValidated) refreshFindings(roost);
}

// --- the event stream ---------------------------------------------------------

async function handleEvent(name, data, session) {
  if (SUMMARY_EVENTS.has(name) && data.roost) {
    upsert(data.roost);
    followDetail(name, data);
  } else if (name === 'deleted') {
    remove(data.namespace, data.name);
  } else if (name === 'resync') {
    // Read no further events until the list is current again.
    await loadList(session);
    if (state.selected && state.roosts.has(state.selected)) await loadDetail(state.selected);
    else if (state.selected) closeDetail();
  }
}

// Text/event-stream parsing: fields until a blank line, comments ignored.
async function readEvents(body, session) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = { id: null, name: '', data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, '');
      buffer = buffer.slice(end + 1);
      if (session !== state.session) return;
      if (line === '') {
        if (event.data.length) {
          let data = null;
          try {
            data = JSON.parse(event.data.join('\n'));
          } catch {
            console.warn('roost-keeper: an event whose data is not JSON', event.name);
          }
          if (data) await handleEvent(event.name || 'message', data, session);
        }
        if (event.id !== null) state.lastEventId = event.id;
        event = { id: null, name: '', data: [] };
        continue;
      }
      if (line.startsWith(':')) continue; // a comment: the heartbeat
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'id' && !text.includes('\0')) event.id = text;
      else if (field === 'event') event.name = text;
      else if (field === 'data') event.data.push(text);
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The stream, reopened after a failure (1 s, doubling to 30 s, with jitter) from the last event seen.
async function stream(session) {
  let backoff = BACKOFF_MIN_MS;
  while (session === state.session) {
    const abort = new AbortController();
    state.abort = abort;
    try {
      setLive(backoff === BACKOFF_MIN_MS ? 'connecting' : 'reconnecting');
      const headers = { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' };
      if (state.lastEventId) headers['Last-Event-ID'] = state.lastEventId;
      const response = await fetch('/api/v1/stream', { headers, signal: abort.signal, cache: 'no-store', credentials: 'omit' });
      if (response.status === 401) {
        signOut('token rejected', 'error');
        return;
      }
      if (!response.ok || !response.body) throw new HttpError(response.status, await errorMessage(response));
      setLive('live');
      backoff = BACKOFF_MIN_MS;
      await readEvents(response.body, session);
      if (session === state.session) throw new Error('the stream ended');
    } catch (err) {
      if (session !== state.session) return;
      if (err instanceof HttpError && err.status === 401) {
        signOut('token rejected', 'error'); // a re-list after a resync
        return;
      }
      setLive('reconnecting');
      if (err instanceof HttpError && err.status === 403) showMessage(`Live updates forbidden: ${err.message}`, 'error');
      if (err instanceof HttpError && err.status === 429) {
        showMessage(`Live updates paused: ${err.message}. Retrying.`, 'error');
        backoff = Math.max(backoff, 10000);
      }
      await sleep(backoff * (0.75 + Math.random() / 2));
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    } finally {
      abort.abort();
    }
  }
}

// --- signing in and out ---------------------------------------------------------

async function start() {
  const session = ++state.session;
  $('signin').hidden = true;
  $('roosts').hidden = false;
  $('session').hidden = false;
  $('tables').replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  showMessage('');
  // The list first (its lastEventId is where the stream starts); a server
  // still reading the cluster (503) or out of reach is asked again.
  for (let backoff = BACKOFF_MIN_MS; ; backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)) {
    try {
      await loadList(session);
      showMessage('');
      break;
    } catch (err) {
      if (session !== state.session) return;
      const status = err instanceof HttpError ? err.status : 0;
      if (status === 401 || status === 403) {
        failed(err, 'Listing roosts');
        return;
      }
      showMessage(`Listing roosts: ${err.message}. Retrying.`, 'error');
      await sleep(backoff);
      if (session !== state.session) return;
    }
  }
  stream(session);
}

function signOut(message, kind = 'info') {
  state.session++;
  state.abort?.abort();
  state.token = null;
  state.roosts = new Map();
  state.lastEventId = null;
  closeDetail();
  sessionStorage.removeItem(TOKEN_KEY);
  $('tables').replaceChildren();
  $('roosts').hidden = true;
  $('session').hidden = true;
  $('signin').hidden = false;
  setLive('offline');
  showMessage(message, kind);
  $('token').focus();
}

function init() {
  $('signin-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim().replace(/^Bearer\s+/i, '');
    $('token').value = '';
    if (!token) {
      showMessage('Paste a token first.', 'error');
      return;
    }
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    start();
  });
  $('sign-out').addEventListener('click', () => signOut('Signed out.'));
  $('ns-filter').addEventListener('input', renderList);
  $('detail-close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && state.selected) closeDetail();
  });
  setInterval(refreshTimes, 15000);
  state.token = sessionStorage.getItem(TOKEN_KEY);
  if (state.token) start();
  else $('token').focus();
}

init();
