#!/usr/bin/env node
// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// receiver.js - an OTLP/HTTP receiver on loopback for dbtap's tests. Every POST to
// /v1/{metrics,traces,logs} is gunzipped when Content-Encoding says gzip, checked against the
// OTLP JSON rules (64-bit integers as strings, hex ids, integer enums) and decoded with the
// official protobuf definitions of @opentelemetry/otlp-transformer (build/src/generated/root.js),
// then recorded as one JSON line in the --out file:
//   {"signal","status","time_ms","gzip","body_bytes","json_bytes","json_sha1","errors":[...],
//    "request":{...}}
// where "json_sha1" is the SHA-1 of the (gunzipped) body, so a retry shows as the same value
// where "request" is the decoded message (protobuf toObject: longs as strings, enums as
// numbers, ids as hex again).
//
// Behaviour, changed by POST /control {"mode": "ok"|"503"|"429"|"400"|"partial",
// "retryAfter": seconds, "count": N (answers in that mode, then back to ok; 0 = until changed)}:
// "503"/"429" answer that status (with Retry-After when given), "400" answers 400,
// "partial" answers 200 with a partialSuccess rejecting one item. SIGHUP closes the listening
// socket and every connection (the receiver is "down": connections are refused), SIGUSR2 listens
// again on the same port. SIGTERM/SIGINT exit.
//
// Usage: node receiver.js --out FILE [--port N] [--port-file FILE]
// Prints "listening PORT" on stdout (and writes PORT to --port-file) once it accepts requests.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const zlib = require('zlib');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');

const pb = root.opentelemetry.proto.collector;
const TYPES = {
	'/v1/metrics': ['metrics', pb.metrics.v1.ExportMetricsServiceRequest],
	'/v1/traces': ['traces', pb.trace.v1.ExportTraceServiceRequest],
	'/v1/logs': ['logs', pb.logs.v1.ExportLogsServiceRequest],
};
const REJECTED_KEY = { metrics: 'rejectedDataPoints', traces: 'rejectedSpans', logs: 'rejectedLogRecords' };
const ID_LENGTHS = { traceId: 32, spanId: 16, parentSpanId: 16 };
// OTLP JSON: 64-bit integer fields are decimal strings
const INT64_KEYS = new Set(['startTimeUnixNano', 'timeUnixNano', 'endTimeUnixNano',
	'observedTimeUnixNano', 'count', 'zeroCount', 'asInt', 'intValue']);
const INT64_ARRAY_KEYS = new Set(['bucketCounts']);
const ENUM_KEYS = new Set(['kind', 'code', 'severityNumber', 'aggregationTemporality']);

function arg(name, dflt) {
	const i = process.argv.indexOf(name);
	return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : dflt;
}

const outPath = arg('--out', null);
const portFile = arg('--port-file', null);
let port = Number(arg('--port', '0'));
if (!outPath) {
	console.error('usage: receiver.js --out FILE [--port N] [--port-file FILE]');
	process.exit(2);
}
const out = fs.openSync(outPath, 'a');

let mode = 'ok';
let retryAfter = 0;
let modeCount = 0;

// Check the OTLP JSON encoding rules on the raw document; returns a list of violations.
function checkRules(node, path, errors) {
	if (Array.isArray(node)) {
		node.forEach((v, i) => checkRules(v, `${path}[${i}]`, errors));
		return;
	}
	if (!node || typeof node !== 'object')
		return;
	for (const [k, v] of Object.entries(node)) {
		const p = `${path}.${k}`;
		if (INT64_KEYS.has(k) && !(typeof v === 'string' && /^-?\d+$/.test(v)))
			errors.push(`${p}: 64-bit integer not a decimal string: ${JSON.stringify(v)}`);
		if (INT64_ARRAY_KEYS.has(k) && !(Array.isArray(v) && v.every((x) => typeof x === 'string' && /^\d+$/.test(x))))
			errors.push(`${p}: not an array of decimal strings`);
		if (ENUM_KEYS.has(k) && !Number.isInteger(v))
			errors.push(`${p}: enum not an integer: ${JSON.stringify(v)}`);
		if (k in ID_LENGTHS && !(typeof v === 'string' && v.length === ID_LENGTHS[k] && /^[0-9a-f]+$/.test(v)))
			errors.push(`${p}: id not ${ID_LENGTHS[k]} lower-case hex digits: ${JSON.stringify(v)}`);
		if (k === 'explicitBounds') {
			for (let i = 1; i < v.length; i++)
				if (!(v[i] > v[i - 1]))
					errors.push(`${p}: bounds not strictly increasing at ${i}`);
		}
		if (k === 'bucketCounts' && node.explicitBounds && v.length !== node.explicitBounds.length + 1)
			errors.push(`${p}: ${v.length} bucket counts for ${node.explicitBounds.length} bounds`);
		checkRules(v, p, errors);
	}
}

// OTLP JSON ids are hex where protobuf JSON expects base64: convert (in place) before fromObject.
function hexIdsToBase64(node) {
	if (Array.isArray(node))
		return node.forEach(hexIdsToBase64);
	if (!node || typeof node !== 'object')
		return;
	for (const [k, v] of Object.entries(node)) {
		if (k in ID_LENGTHS && typeof v === 'string')
			node[k] = Buffer.from(v, 'hex').toString('base64');
		else
			hexIdsToBase64(v);
	}
}

function base64IdsToHex(node) {
	if (Array.isArray(node))
		return node.forEach(base64IdsToHex);
	if (!node || typeof node !== 'object')
		return;
	for (const [k, v] of Object.entries(node)) {
		if (k in ID_LENGTHS && typeof v === 'string')
			node[k] = Buffer.from(v, 'base64').toString('hex');
		else
			base64IdsToHex(v);
	}
}

function record(entry) {
	fs.writeSync(out, JSON.stringify(entry) + '\n');
}

function answer(res, status, body, headers) {
	res.writeHead(status, Object.assign({ 'Content-Type': 'application/json' }, headers || {}));
	res.end(JSON.stringify(body));
}

function handleExport(req, res, raw, signal, Type) {
	const entry = { signal, time_ms: Date.now(), gzip: req.headers['content-encoding'] === 'gzip',
		body_bytes: raw.length, errors: [] };
	let status = 200;
	let reply = {};
	let text;

	try {
		text = entry.gzip ? zlib.gunzipSync(raw) : raw;
		entry.json_bytes = text.length;
		entry.json_sha1 = crypto.createHash('sha1').update(text).digest('hex');
		const doc = JSON.parse(text.toString('utf8'));
		checkRules(doc, '$', entry.errors);
		hexIdsToBase64(doc);
		const msg = Type.decode(Type.encode(Type.fromObject(doc)).finish());
		const why = Type.verify(msg);
		if (why)
			entry.errors.push(`verify: ${why}`);
		entry.request = Type.toObject(msg, { longs: String, enums: Number, bytes: String, defaults: false });
		base64IdsToHex(entry.request);
	} catch (e) {
		entry.errors.push(`decode: ${e.message}`);
	}
	if (entry.errors.length) {
		status = 400;
		reply = { message: entry.errors.join('; ') };
	} else if (mode === '503' || mode === '429') {
		status = Number(mode);
	} else if (mode === '400') {
		status = 400;
		reply = { message: 'rejected by the test' };
	} else if (mode === 'partial') {
		reply = { partialSuccess: { [REJECTED_KEY[signal]]: '1', errorMessage: 'test rejects one' } };
	}
	if (mode !== 'ok' && modeCount > 0 && --modeCount === 0)
		mode = 'ok';
	entry.status = status;
	record(entry);
	answer(res, status, reply, status !== 200 && retryAfter > 0 && (status === 503 || status === 429)
		? { 'Retry-After': String(retryAfter) } : {});
}

function onRequest(req, res) {
	const chunks = [];
	req.on('data', (c) => chunks.push(c));
	req.on('end', () => {
		const raw = Buffer.concat(chunks);
		if (req.method === 'POST' && req.url === '/control') {
			const c = JSON.parse(raw.toString('utf8') || '{}');
			mode = c.mode || 'ok';
			retryAfter = c.retryAfter || 0;
			modeCount = c.count || 0;
			return answer(res, 200, { mode, retryAfter, count: modeCount });
		}
		const t = TYPES[req.url];
		if (req.method !== 'POST' || !t)
			return answer(res, 404, { message: `no ${req.method} ${req.url}` });
		handleExport(req, res, raw, t[0], t[1]);
	});
}

// A fresh server each time it comes up: a closed one is not reused.
let server = null;
const sockets = new Set();

function listen() {
	server = http.createServer(onRequest);
	server.keepAliveTimeout = 60000;
	server.on('connection', (s) => {
		sockets.add(s);
		s.on('close', () => sockets.delete(s));
	});
	server.on('error', (e) => {
		process.stderr.write(`listen: ${e.message}\n`);
		process.exit(1);
	});
	server.listen(port, '127.0.0.1', () => {
		port = server.address().port;
		if (portFile)
			fs.writeFileSync(portFile, `${port}\n`);
		process.stdout.write(`listening ${port}\n`);
	});
}

process.on('SIGHUP', () => {
	if (!server)
		return;
	server.close();
	server = null;
	for (const s of sockets)
		s.destroy();
	process.stdout.write('down\n');
});
process.on('SIGUSR2', () => {
	if (!server)
		listen();
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
// keeps the process alive while no server is listening
setInterval(() => {}, 1 << 30);
listen();
