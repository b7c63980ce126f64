// The camara-webrtc console: follows GET /network/v1/stream (Server-Sent Events read with
// fetch, since EventSource cannot send an Authorization header) and plays the network through
// the admin API. Everything it does, the API does: it holds no state of its own but the token
// (in this tab's sessionStorage) and what the stream told it. No framework, no build step.
'use strict';

(() => {
  const TOKEN_KEY = 'camara-webrtc-console-token';
  // A caller's offer for the call form (the fixture session's, which passes the SDP check).
  const SAMPLE_OFFER = [
    'v=0', 'o=- 8066321617929821805 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
    'm=audio 42988 RTP/SAVPF 102 113', 'c=IN IP4 192.0.2.10', 'a=rtcp:9 IN IP4 0.0.0.0',
    'a=ice-ufrag:4eKp', 'a=ice-pwd:D4sF5Pv9vx9ggaqxBlHbAFMx', 'a=mid:audio', 'a=sendrecv',
    'a=rtcp-mux', 'a=rtpmap:102 AMR-WB/16000', 'a=rtpmap:113 telephone-event/16000', '',
  ].join('\r\n');
  const SHOWN_AT_MOST = 500;

  const $ = (id) => document.getElementById(id);
  const model = {
    sessions: new Map(), // id -> latest record
    history: new Map(), // id -> Map(version -> record)
    deliveries: new Map(), // session id -> Map(event id + subscription -> latest record)
    registrations: new Map(),
    subscriptions: new Map(),
    selected: null,
  };
  let following = null; // AbortController of the current follow(): aborting it ends that loop
  let drawScheduled = false;

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function say(text, isError) {
    const message = $('message');
    message.textContent = text;
    message.dataset.kind = isError ? 'error' : 'info';
  }

  function setLive(state, text) {
    const live = $('live');
    live.dataset.state = state;
    live.textContent = text;
  }

  // One admin API call; resolves to the JSON answered (null for 204), or throws an Error whose
  // message is the CAMARA error's.
  async function api(method, path, body) {
    const response = await fetch(path, {
      method,
      headers: {
        Authorization: `Bearer ${token()}`,
        ...(body ? { 'Content-Type': 'application/json' } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
      cache: 'no-store',
      credentials: 'omit',
    });
    const text = await response.text();
    const json = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const detail = json && json.message ? `${json.code}: ${json.message}` : response.statusText;
      throw new Error(`${response.status} ${detail}`);
    }
    return json;
  }

  // --- the stream -------------------------------------------------------------------------

  function reset() {
    model.sessions.clear();
    model.history.clear();
    model.deliveries.clear();
    model.registrations.clear();
    model.subscriptions.clear();
  }

  function apply(kind, record) {
    switch (kind) {
      case 'session': {
        const known = model.sessions.get(record.id);
        if (!known || known.version < record.version ||
            (known.version === record.version && !known.at && record.at)) {
          model.sessions.set(record.id, record);
        }
        if (!model.history.has(record.id)) model.history.set(record.id, new Map());
        const versions = model.history.get(record.id);
        const before = versions.get(record.version);
        if (!before || (!before.at && record.at)) versions.set(record.version, record);
        break;
      }
      case 'delivery': {
        if (!record.sessionId) break;
        if (!model.deliveries.has(record.sessionId)) model.deliveries.set(record.sessionId, new Map());
        const events = model.deliveries.get(record.sessionId);
        const key = `${record.subscriptionId} ${record.eventId}`;
        const before = events.get(key);
        // The latest attempt wins. A drop without a status of its own (the subscription ended
        // before the next attempt) keeps the status its last attempt got.
        if (!before || record.attempt >= before.attempt) {
          if (before && record.httpStatus === undefined && record.outcome === 'dropped' &&
              record.attempt === before.attempt) {
            record.httpStatus = before.httpStatus;
          }
          events.set(key, record);
        }
        break;
      }
      case 'registration':
      case 'subscription': {
        // An end is final: a record made before it (the first look at the store can arrive
        // after a live record) does not bring the row back.
        const rows = kind === 'registration' ? model.registrations : model.subscriptions;
        const known = rows.get(record.id);
        if (!(known && known.ended && !record.ended)) rows.set(record.id, record);
        break;
      }
      case 'ready':
        setLive('live', 'Live');
        break;
      case 'dropped':
        say(record.reason, true);
        break;
      default:
        break;
    }
    scheduleDraw();
  }

  // One SSE block: its `event` and `data` lines (comments and ids are skipped).
  function onBlock(block) {
    let kind = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) kind = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    if (data.length === 0) return;
    try {
      apply(kind, JSON.parse(data.join('\n')));
    } catch (e) {
      console.warn('an unreadable stream record', e);
    }
  }

  // Resolves after `ms`, or at once when `signal` aborts.
  const sleep = (ms, signal) => new Promise((resolve) => {
    const woken = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', woken);
      resolve();
    };
    const timer = setTimeout(woken, ms);
    signal.addEventListener('abort', woken, { once: true });
  });

  // Follows the stream until forget() or another follow() aborts this one, reconnecting with
  // backoff. Each await is followed by a check, so an aborted loop never touches the page.
  async function follow() {
    if (following) following.abort();
    const controller = new AbortController();
    following = controller;
    const { signal } = controller;
    const mine = () => following === controller && !signal.aborted;
    let wait = 500;
    while (mine() && token()) {
      try {
        setLive('connecting', 'Connecting…');
        const response = await fetch('/network/v1/stream', {
          headers: { Authorization: `Bearer ${token()}`, Accept: 'text/event-stream' },
          cache: 'no-store',
          credentials: 'omit',
          signal,
        });
        if (!mine()) return;
        if (response.status === 401 || response.status === 403) {
          const body = await response.json().catch(() => ({}));
          if (!mine()) return;
          forget(`The token was refused (${response.status}): ${body.message || ''}`);
          return;
        }
        if (!response.ok) throw new Error(`the stream answered ${response.status}`);
        reset();
        wait = 500;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (!mine()) return;
          if (done) break;
          buffer += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            onBlock(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (e) {
        if (!mine()) return;
        console.warn('stream broken', e);
      }
      if (!mine()) return;
      setLive('reconnecting', 'Reconnecting…');
      await sleep(wait, signal);
      wait = Math.min(wait * 2, 10000);
    }
  }

  // --- drawing ----------------------------------------------------------------------------

  function scheduleDraw() {
    if (drawScheduled) return;
    drawScheduled = true;
    setTimeout(() => {
      drawScheduled = false;
      draw();
    }, 30);
  }

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'className') node.className = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const time = (at) => (at ? new Date(at).toLocaleTimeString() : '—');
  const short = (id) => (id.length > 12 ? `${id.slice(0, 8)}…` : id);

  function lastChange(record) {
    const versions = model.history.get(record.id);
    let at = record.at;
    if (versions) for (const r of versions.values()) if (r.at && (!at || r.at > at)) at = r.at;
    return at;
  }

  function isOver(record) {
    return record.deleted || record.moves.length === 0;
  }

  function fill(tableId, rows, emptyId, countId, total) {
    const body = $(tableId).querySelector('tbody');
    body.replaceChildren(...rows);
    $(emptyId).hidden = rows.length > 0;
    $(countId).textContent = total > rows.length ? `(${rows.length} of ${total})` : `(${total})`;
  }

  function drawSessions() {
    const sessions = [...model.sessions.values()].sort((a, b) =>
      (isOver(a) - isOver(b)) || String(lastChange(b) || '').localeCompare(String(lastChange(a) || '')) ||
      a.id.localeCompare(b.id));
    const rows = sessions.slice(0, SHOWN_AT_MOST).map((s) => el('tr', {
      'data-session': s.id,
      className: [isOver(s) ? 'over' : '', model.selected === s.id ? 'selected' : ''].join(' ').trim(),
    },
    el('td', {}, el('button', {
      type: 'button', className: 'link', title: s.id, 'aria-label': `Show session ${s.id}`,
      'aria-current': model.selected === s.id ? 'true' : null, 'data-focus': `session ${s.id}`,
      onclick: () => select(s.id),
    }, short(s.id))),
    el('td', { className: 'status', 'data-status': s.status }, s.deleted ? `${s.status} (deleted)` : s.status),
    el('td', {}, `${s.originator} → ${s.receiver}`),
    el('td', {}, s.onNet ? `${s.direction}, on-net` : s.direction),
    el('td', {}, time(lastChange(s)))));
    fill('sessions', rows, 'sessions-empty', 'sessions-count', sessions.length);
  }

  function drawRegistrations() {
    const registrations = [...model.registrations.values()].filter((r) => !r.ended);
    const rows = registrations.slice(0, SHOWN_AT_MOST).map((r) => el('tr', { 'data-registration': r.id },
      el('td', {}, r.phoneNumber),
      el('td', { title: r.deviceId }, short(r.deviceId)),
      el('td', {}, r.consumer),
      el('td', {}, time(r.expiresAt)),
      el('td', {}, r.proven ? 'yes' : 'no (2-legged)'),
      el('td', {},
        r.proven ? el('button', {
          type: 'button', 'aria-label': `Call ${r.phoneNumber}`, 'data-focus': `call ${r.id}`,
          onclick: () => prefillCall(r.phoneNumber),
        }, 'Call it') : null,
        el('button', {
          type: 'button', 'aria-label': `End the registration of ${r.phoneNumber} (${r.deviceId})`,
          'data-focus': `end ${r.id}`, onclick: () => endRegistration(r.id),
        }, 'End'))));
    fill('registrations', rows, 'registrations-empty', 'registrations-count', registrations.length);
    const receivers = [...new Set(registrations.filter((r) => r.proven).map((r) => `tel:${r.phoneNumber}`))];
    $('receivers').replaceChildren(...receivers.map((n) => el('option', { value: n })));
  }

  function drawSubscriptions() {
    const subscriptions = [...model.subscriptions.values()];
    const rows = subscriptions.slice(0, SHOWN_AT_MOST).map((s) => el('tr', { 'data-subscription': s.id },
      el('td', { title: s.id }, short(s.id)),
      el('td', {}, s.consumer),
      el('td', { className: 'wrap' }, s.sink),
      el('td', {}, s.types.join(', ')),
      el('td', {}, s.phoneNumbers.join(', ')),
      el('td', {}, s.ended ? `ended: ${s.ended}` : (s.expiresAt ? `until ${time(s.expiresAt)}` : 'active'))));
    fill('subscriptions', rows, 'subscriptions-empty', 'subscriptions-count', subscriptions.length);
  }

  function drawDetail() {
    const id = model.selected;
    const record = id && model.sessions.get(id);
    $('detail').hidden = !record;
    if (!record) return;
    $('detail-id').textContent = id;
    const facts = [
      ['Status', record.deleted ? `${record.status} (deleted by its client)` : record.status],
      ['From', record.originator], ['To', record.receiver],
      ['Direction', record.onNet ? `${record.direction} (on-net)` : record.direction],
      ['Call type', record.callType], ['Version', record.version],
      ['Reason', record.reason], ['Answer', record.hasAnswer ? 'yes' : 'not yet'],
    ].filter(([, v]) => v !== undefined && v !== null);
    $('detail-facts').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
    $('detail-facts').dataset.status = record.status;

    $('moves').replaceChildren(...record.moves.map((status) => el('button', {
      type: 'button', 'data-move': status, 'data-focus': `move ${status}`,
      onclick: () => move(id, status),
    }, status)));
    $('moves-none').hidden = record.moves.length > 0;

    const versions = [...(model.history.get(id) || new Map()).values()].sort((a, b) => a.version - b.version);
    $('timeline').replaceChildren(...versions.map((v) => el('li', { 'data-version': v.version },
      el('span', { className: 'status', 'data-status': v.status }, v.status),
      ` v${v.version} · ${time(v.at)}`, v.reason ? ` · ${v.reason}` : '')));

    const events = [...(model.deliveries.get(id) || new Map()).values()];
    const bySink = new Map();
    for (const d of events) {
      const key = `${d.subscriptionId}`;
      if (!bySink.has(key)) bySink.set(key, []);
      bySink.get(key).push(d);
    }
    $('deliveries').replaceChildren(...[...bySink.entries()].map(([subscription, list]) => el('div', {
      className: 'sink', 'data-sink-subscription': subscription,
    },
    el('h4', {}, list[0].sink, el('small', {}, ` subscription ${short(subscription)}`)),
    el('div', {
      className: 'scroll', tabindex: '0', role: 'region', 'aria-label': `Deliveries to ${list[0].sink}`,
      'data-focus': `deliveries ${subscription}`,
    }, el('table', {},
      el('thead', {}, el('tr', {}, ['Event', 'Type', 'Outcome', 'HTTP', 'Attempts', 'At'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, list.sort((a, b) => a.at.localeCompare(b.at)).map((d) => el('tr', {
        'data-event': d.eventId, 'data-type': d.type, 'data-outcome': d.outcome,
      },
      el('td', { title: d.eventId }, short(d.eventId)), el('td', {}, d.type),
      el('td', { className: `outcome ${d.outcome}` }, d.outcome),
      el('td', {}, d.httpStatus === undefined ? '—' : d.httpStatus),
      el('td', {}, d.attempt), el('td', {}, time(d.at))))))))));
    $('deliveries-none').hidden = events.length > 0;
  }

  // Redraws everything from the model. Rows and buttons are made anew, so the focused one (if
  // it has a data-focus key) is found again by its key and focused: the keyboard user's place
  // survives every record.
  function draw() {
    const active = document.activeElement;
    const focused = active && active.dataset ? active.dataset.focus : undefined;
    drawSessions();
    drawRegistrations();
    drawSubscriptions();
    drawDetail();
    if (focused !== undefined && !active.isConnected) {
      const again = [...document.querySelectorAll('[data-focus]')].find((n) => n.dataset.focus === focused);
      // A move that is no longer allowed: back to the session's heading, not to the page.
      if (again) again.focus();
      else if (focused.startsWith('move ') && !$('detail').hidden) $('detail-title').focus();
    }
  }

  // --- actions ----------------------------------------------------------------------------

  function select(id) {
    model.selected = id;
    $('sdp').hidden = true;
    draw();
    $('detail').scrollIntoView({ block: 'nearest' });
    $('detail-title').focus();
  }

  async function move(id, status) {
    const reason = $('move-reason').value.trim();
    try {
      const session = await api('POST', `/network/v1/sessions/${encodeURIComponent(id)}/events`,
        reason ? { status, reason } : { status });
      say(`${id}: the network moved it to ${session.status}.`);
      $('move-reason').value = '';
    } catch (e) {
      say(`${status} refused: ${e.message}`, true);
    }
  }

  async function endRegistration(id) {
    try {
      await api('DELETE', `/network/v1/registrations/${encodeURIComponent(id)}`);
      say(`Registration ${id} ended by the network.`);
    } catch (e) {
      say(`Not ended: ${e.message}`, true);
    }
  }

  function prefillCall(number) {
    $('call-to').value = `tel:${number}`;
    $('call-from').focus();
  }

  async function placeCall(event) {
    event.preventDefault();
    try {
      const session = await api('POST', '/network/v1/calls', {
        originatorAddress: $('call-from').value.trim(),
        receiverAddress: $('call-to').value.trim(),
        callType: $('call-type').value,
        offer: { sdp: $('call-offer').value.replace(/\r?\n/g, '\r\n') },
      });
      say(`Incoming call ${session.mediaSessionId} placed.`);
      model.selected = session.mediaSessionId;
      scheduleDraw();
    } catch (e) {
      say(`Call not placed: ${e.message}`, true);
    }
  }

  async function showSdp() {
    const id = model.selected;
    try {
      const session = await api('GET', `/network/v1/sessions/${encodeURIComponent(id)}`);
      $('sdp-offer').textContent = session.offer ? session.offer.sdp : '(none)';
      $('sdp-answer').textContent = session.answer ? session.answer.sdp : '(none yet)';
      $('sdp').hidden = false;
    } catch (e) {
      say(`SDPs not read: ${e.message}`, true);
    }
  }

  function connect(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
    $('sign-in').hidden = true;
    $('app').hidden = false;
    $('forget').hidden = false;
    say('');
    follow();
  }

  function forget(why) {
    sessionStorage.removeItem(TOKEN_KEY);
    if (following) following.abort();
    following = null;
    reset();
    model.selected = null;
    draw();
    $('app').hidden = true;
    $('forget').hidden = true;
    $('sign-in').hidden = false;
    setLive('off', 'Not connected');
    $('token').value = '';
    if (why) {
      const note = $('sign-in').querySelector('.refused') || el('p', { className: 'refused', role: 'alert' });
      note.textContent = why;
      $('token-form').before(note);
    }
    $('token').focus();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('call-offer').value = SAMPLE_OFFER;
    $('detail-title').tabIndex = -1;
    $('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const value = $('token').value.trim();
      if (value) connect(value);
    });
    $('forget').addEventListener('click', () => forget());
    $('call-form').addEventListener('submit', placeCall);
    $('show-sdp').addEventListener('click', showSdp);
    if (token()) connect(token());
    else $('token').focus();
  });
})();
