// fusionserve attention explorer. Plain JavaScript, same origin only:
//   GET  /ui/api/models, /ui/api/examples, POST /ui/api/score  (ui_api.h)
//   GET  /metrics                                              (live panel)
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };

  const state = { models: [], current: null, response: null };

  // --- errors: always the server's status and words ----------------------

  async function callJson(url, options) {
    let res;
    try {
      res = await fetch(url, options);
    } catch (e) {
      throw { status: 'network error', code: '', message: String(e) };
    }
    const text = await res.text();
    let body = null;
    try { body = JSON.parse(text); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      throw {
        status: `HTTP ${res.status}`,
        code: body && body.code ? body.code : '',
        message: body && (body.message || body.error) ? (body.message || body.error) : (text || res.statusText),
      };
    }
    if (body === null) throw { status: `HTTP ${res.status}`, code: '', message: 'the answer is not JSON' };
    return body;
  }

  function showError(err) {
    $('error-status').textContent = err.status || 'error';
    $('error-code').textContent = err.code || '';
    $('error-message').textContent = err.message || String(err);
    $('error').hidden = false;
  }
  function clearError() { $('error').hidden = true; }

  // --- the form, from the model's metadata -------------------------------

  const fmt = (x) => {
    if (!Number.isFinite(x)) return String(x);
    const a = Math.abs(x);
    return a !== 0 && (a >= 1e5 || a < 1e-3) ? x.toExponential(3) : String(+x.toPrecision(6));
  };

  async function loadModels() {
    const body = await callJson('/ui/api/models');
    state.models = body.models || [];
    const select = $('model-select');
    select.textContent = '';
    state.models.forEach((m, i) => {
      select.appendChild(el('option', { value: String(i) }, `${m.name} v${m.version}`));
    });
    $('model-row').hidden = state.models.length < 2;
    if (state.models.length === 0) throw { status: 'no model', code: '', message: 'the server has no ready model' };
    const def = state.models.findIndex((m) => m.name === body.default_model);
    select.value = String(def < 0 ? 0 : def);
    await selectModel(Number(select.value));
  }

  async function selectModel(index) {
    const m = state.models[index];
    state.current = m;
    $('model-info').textContent =
      `${m.name} v${m.version}: ${(m.description || '').replace(/\.\s*$/, '')} · classes ${m.classes.join(' / ')} · ` +
      `up to ${m.max_tokens} tokens (${m.truncation || 'truncated'}) · ${m.attention_heads} heads · ${m.device}`;
    const tbody = $('features');
    tbody.textContent = '';
    for (const f of m.features) {
      const id = `feature-${f.name}`;
      const tr = el('tr');
      const name = el('td', { class: 'fname' });
      const label = el('label', { for: id }, f.name);
      name.appendChild(label);
      if (f.allow_missing) name.appendChild(el('span', { class: 'opt' }, ' optional'));
      name.appendChild(el('span', { class: 'desc', id: `${id}-desc` }, f.description || ''));
      tr.appendChild(name);
      const value = el('td', { class: 'value' });
      const input = el('input', {
        type: 'number', step: 'any', id, name: f.name, 'data-feature': f.name,
        'aria-describedby': `${id}-desc ${id}-range`,
        placeholder: f.allow_missing ? `default ${fmt(f.default_value)}` : 'required',
      });
      value.appendChild(input);
      const typical = `typical ${fmt(f.mean)} ± ${fmt(f.std)}` +
        (f.allow_missing ? ` · default ${fmt(f.default_value)}` : '');
      value.appendChild(el('span', { class: 'range', id: `${id}-range` }, typical));
      tr.appendChild(value);
      tbody.appendChild(tr);
    }
    await loadExamples(m);
  }

  async function loadExamples(m) {
    const box = $('examples');
    box.textContent = '';
    let body;
    try {
      body = await callJson(`/ui/api/examples?model=${encodeURIComponent(m.name)}&version=${encodeURIComponent(m.version)}`);
    } catch (err) {
      showError(err);
      return;
    }
    const examples = body.examples || [];
    if (examples.length === 0) box.appendChild(el('span', { class: 'muted' }, 'none in this bundle'));
    examples.forEach((ex, i) => {
      const text = ex.text.trim();
      const label = !text ? (ex.text ? '(blank text)' : '(empty text)')
        : text.length > 28 ? text.slice(0, 27) + '…' : text;
      const button = el('button', { type: 'button', class: 'example', 'data-index': String(i), title: ex.request_id || '' }, label);
      button.addEventListener('click', () => fillExample(ex));
      box.appendChild(button);
    });
  }

  function fillExample(ex) {
    $('text').value = ex.text || '';
    for (const input of document.querySelectorAll('#features input')) {
      const v = ex.features ? ex.features[input.dataset.feature] : undefined;
      input.value = v === undefined || v === null ? '' : String(v);
    }
  }

  function buildRequest() {
    const m = state.current;
    const features = {};
    for (const input of document.querySelectorAll('#features input')) {
      const raw = input.value.trim();
      if (raw === '') continue;  // left out: the server applies the default or says it is required
      features[input.dataset.feature] = Number(raw);
    }
    return {
      model: m.name,
      model_version: m.version,
      text: $('text').value,
      features,
      attention: document.querySelector('input[name="attention"]:checked').value,
    };
  }

  async function submit(event) {
    event.preventDefault();
    clearError();
    $('submit').disabled = true;
    $('busy').hidden = false;
    try {
      const response = await callJson('/ui/api/score', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(buildRequest()),
      });
      state.response = response;
      renderResponse(response);
    } catch (err) {
      $('result').hidden = true;
      $('placeholder').hidden = true;
      showError(err);
    } finally {
      $('submit').disabled = false;
      $('busy').hidden = true;
    }
  }

  // --- the answer ----------------------------------------------------------

  const us = (v) => {
    const n = Number(v);
    return n >= 1000 ? `${(n / 1000).toFixed(2)} ms` : `${n} µs`;
  };

  function renderResponse(r) {
    $('placeholder').hidden = true;
    $('result').hidden = false;
    const score = $('score');
    score.textContent = Number(r.score).toFixed(6);
    score.dataset.value = String(r.score);
    $('answer-model').textContent = `${r.model} v${r.model_version}`;
    const probs = $('probabilities');
    probs.textContent = '';
    const classes = state.current.classes || [];
    (r.probabilities || []).forEach((p, i) => {
      const tr = el('tr');
      tr.appendChild(el('td', {}, classes[i] || `class ${i}`));
      const v = el('td', { 'data-value': String(p) }, Number(p).toFixed(6));
      tr.appendChild(v);
      const barCell = el('td');
      const bar = el('span', { class: 'bar' });
      bar.style.width = `${Math.round(Number(p) * 120)}px`;  // CSSOM: allowed by the CSP
      barCell.appendChild(bar);
      tr.appendChild(barCell);
      probs.appendChild(tr);
    });
    const t = r.timing || {};
    $('timing-queue').textContent = us(t.queue_us || 0);
    $('timing-compute').textContent = us(t.compute_us || 0);
    $('timing-batch').textContent = String(t.batch_size || 0);
    $('timing-total').textContent = us(t.total_us || 0);

    const a = r.attention;
    const hasAttention = a && a.tokens && a.tokens.length > 0 && a.text_to_features_shape && a.text_to_features_shape.length > 0;
    renderTokens(hasAttention ? a.tokens : null, r.truncated);
    $('attention').hidden = !hasAttention;
    $('no-attention').hidden = !!hasAttention;
    if (hasAttention) setupHeads(a);
  }

  function renderTokens(tokens, truncated) {
    const list = $('tokens');
    list.textContent = '';
    $('truncated').hidden = !truncated;
    if (!tokens) {
      $('token-count').textContent = '(returned with attention only)';
      return;
    }
    $('token-count').textContent = `(${tokens.length})`;
    tokens.forEach((tok, i) => {
      let cls = 'token';
      let kind = 'word';
      if (/^\[[A-Z]+\]$/.test(tok)) { cls += ' special'; kind = 'special token'; }
      else if (tok.startsWith('##')) { cls += ' wordpiece'; kind = 'word piece'; }
      const item = el('li', { class: cls, 'data-index': String(i), title: kind }, tok);
      list.appendChild(item);
      if (truncated && i === tokens.length - 2) {
        list.appendChild(el('li', { class: 'token cut', title: 'the text was cut here (max_tokens)' }, '✂'));
      }
    });
  }

  function setupHeads(a) {
    const select = $('head-select');
    select.textContent = '';
    const perHead = a.text_to_features_shape.length === 3;
    if (perHead) {
      const heads = a.text_to_features_shape[0];
      for (let h = 0; h < heads; h++) select.appendChild(el('option', { value: String(h) }, `head ${h + 1} of ${heads}`));
    } else {
      select.appendChild(el('option', { value: 'mean' }, 'mean over heads'));
    }
    select.disabled = !perHead;
    select.value = perHead ? '0' : 'mean';
    renderHeatmaps();
  }

  // The matrix [rows][cols] of `values` (row-major, [heads,] rows x cols).
  function matrix(values, shape, head) {
    const rows = shape[shape.length - 2];
    const cols = shape[shape.length - 1];
    const offset = shape.length === 3 ? head * rows * cols : 0;
    const m = [];
    for (let i = 0; i < rows; i++) m.push(values.slice(offset + i * cols, offset + (i + 1) * cols).map(Number));
    return m;
  }

  // Blues, as in the legend (app.css .legend-bar).
  const STOPS = [[247, 251, 255], [198, 219, 239], [107, 174, 214], [33, 113, 181], [8, 48, 107]];
  function colour(t) {
    const x = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(x));
    const f = x - i;
    const c = STOPS[i].map((v, k) => Math.round(v + (STOPS[i + 1][k] - v) * f));
    return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  }

  function renderHeatmaps() {
    const a = state.response.attention;
    const sel = $('head-select').value;
    const head = sel === 'mean' ? 0 : Number(sel);
    const t2f = matrix(a.text_to_features, a.text_to_features_shape, head);
    const f2t = matrix(a.features_to_text, a.features_to_text_shape, head);
    let max = 0;
    for (const m of [t2f, f2t]) for (const row of m) for (const v of row) max = Math.max(max, v);
    if (max <= 0) max = 1;
    $('legend-min').textContent = '0';
    $('legend-max').textContent = fmt(max);
    const headName = sel === 'mean' ? 'mean over heads' : `head ${head + 1}`;
    drawHeatmap($('heatmap-t2f'), t2f, a.tokens, a.feature_names, 'token', 'feature', max, headName);
    drawHeatmap($('heatmap-f2t'), f2t, a.feature_names, a.tokens, 'feature', 'token', max, headName);
  }

  function describe(table, cell) {
    return `${cell.dataset.rowLabel} → ${cell.dataset.colLabel}: ${cell.dataset.value} (${table.dataset.head})`;
  }

  function drawHeatmap(table, m, rowLabels, colLabels, rowKind, colKind, max, headName) {
    table.textContent = '';
    table.dataset.head = headName;
    table.dataset.rows = String(m.length);
    table.dataset.cols = String(m.length ? m[0].length : 0);
    const thead = el('thead');
    const hr = el('tr');
    hr.appendChild(el('th', { scope: 'col' }, ''));
    colLabels.forEach((c) => hr.appendChild(el('th', { scope: 'col' }, c)));
    thead.appendChild(hr);
    table.appendChild(thead);
    const tbody = el('tbody');
    m.forEach((row, i) => {
      const tr = el('tr');
      tr.appendChild(el('th', { scope: 'row' }, rowLabels[i]));
      row.forEach((v, j) => {
        const td = el('td', {
          class: 'cell', role: 'gridcell', tabindex: i === 0 && j === 0 ? '0' : '-1',
          'data-row': String(i), 'data-col': String(j), 'data-value': String(v),
          'data-row-label': `${rowKind} ${i} ${rowLabels[i]}`, 'data-col-label': `${colKind} ${j} ${colLabels[j]}`,
        });
        td.style.backgroundColor = colour(v / max);  // CSSOM: allowed by the CSP
        td.setAttribute('aria-label', `${rowLabels[i]} to ${colLabels[j]}: ${v}`);
        td.title = `${rowLabels[i]} → ${colLabels[j]}: ${v}`;
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
  }

  function cellEvent(event) {
    const cell = event.target.closest && event.target.closest('td.cell');
    if (!cell) return null;
    return cell;
  }

  function onCellHighlight(event) {
    const cell = cellEvent(event);
    if (!cell) return;
    const table = cell.closest('table');
    for (const old of document.querySelectorAll('td.cell.hi')) old.classList.remove('hi');
    cell.classList.add('hi');
    $('readout').textContent = describe(table, cell);
  }

  // Arrow keys move within a heatmap (one tab stop per heatmap).
  function onCellKey(event) {
    const cell = cellEvent(event);
    if (!cell) return;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1], Home: [0, -1e9], End: [0, 1e9] };
    const mv = moves[event.key];
    if (!mv) return;
    event.preventDefault();
    const table = cell.closest('table');
    const rows = Number(table.dataset.rows), cols = Number(table.dataset.cols);
    const r = Math.min(rows - 1, Math.max(0, Number(cell.dataset.row) + mv[0]));
    const c = Math.min(cols - 1, Math.max(0, Number(cell.dataset.col) + mv[1]));
    const next = table.querySelector(`td.cell[data-row="${r}"][data-col="${c}"]`);
    if (!next) return;
    cell.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }

  // --- live panel: /metrics once a second, over the last 10 s -------------

  const WINDOW = 11;  // samples: 10 intervals
  const samples = [];
  let scrapes = 0;

  function parseMetrics(text) {
    const out = { requests: 0, duration: new Map(), batchSum: 0, batchCount: 0, queue: 0 };
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const name = m[1], labels = m[3] || '', value = Number(m[4]);
      if (!Number.isFinite(value) && m[4] !== '+Inf') continue;
      if (name === 'fusion_requests_total') out.requests += value;
      else if (name === 'fusion_request_duration_seconds_bucket') {
        const le = /le="([^"]*)"/.exec(labels);
        if (le) {
          const bound = le[1] === '+Inf' ? Infinity : Number(le[1]);
          out.duration.set(bound, (out.duration.get(bound) || 0) + value);
        }
      } else if (name === 'fusion_batch_size_sum') out.batchSum += value;
      else if (name === 'fusion_batch_size_count') out.batchCount += value;
      else if (name === 'fusion_queue_depth') out.queue += value;
    }
    return out;
  }

  // Prometheus' histogram_quantile over the buckets' increase.
  function quantile(q, buckets) {
    const bounds = [...buckets.keys()].sort((x, y) => x - y);
    const total = buckets.get(Infinity) || 0;
    if (total <= 0) return null;
    const rank = q * total;
    let prevBound = 0, prevCount = 0;
    for (const b of bounds) {
      const c = buckets.get(b);
      if (c >= rank) {
        if (b === Infinity) return prevBound;
        return prevBound + (b - prevBound) * ((rank - prevCount) / Math.max(c - prevCount, 1e-12));
      }
      prevBound = b; prevCount = c;
    }
    return null;
  }

  const ms = (s) => (s === null ? '–' : `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms`);

  async function pollMetrics() {
    try {
      const res = await fetch('/metrics', { cache: 'no-store' });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const now = performance.now() / 1000;
      samples.push({ t: now, m: parseMetrics(await res.text()) });
      if (samples.length > WINDOW) samples.shift();
      scrapes++;
      const first = samples[0], last = samples[samples.length - 1];
      const dt = last.t - first.t;
      if (samples.length > 1 && dt > 0) {
        $('live-rps').textContent = ((last.m.requests - first.m.requests) / dt).toFixed(1);
        const inc = new Map();
        for (const [b, c] of last.m.duration) inc.set(b, c - (first.m.duration.get(b) || 0));
        $('live-p50').textContent = ms(quantile(0.5, inc));
        $('live-p99').textContent = ms(quantile(0.99, inc));
        const n = last.m.batchCount - first.m.batchCount;
        $('live-batch').textContent = n > 0 ? ((last.m.batchSum - first.m.batchSum) / n).toFixed(2) : '–';
      }
      $('live-queue').textContent = String(last.m.queue);
      $('live-status').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      $('live-status').textContent = `/metrics: ${e.message || e}`;
    }
    $('live').dataset.scrapes = String(scrapes);
    setTimeout(pollMetrics, 1000);
  }

  // --- start ---------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', () => {
    $('score-form').addEventListener('submit', submit);
    $('model-select').addEventListener('change', (e) => {
      clearError();
      selectModel(Number(e.target.value)).catch(showError);
    });
    $('head-select').addEventListener('change', renderHeatmaps);
    for (const id of ['heatmap-t2f', 'heatmap-f2t']) {
      const table = $(id);
      table.addEventListener('mouseover', onCellHighlight);
      table.addEventListener('focusin', onCellHighlight);
      table.addEventListener('keydown', onCellKey);
    }
    loadModels().then(() => { document.body.dataset.ready = '1'; }).catch((err) => {
      showError(err);
      document.body.dataset.ready = 'error';
    });
    pollMetrics();
  });
})();
