// SPDX-License-Identifier: BSD-2-Clause
/*
 * stub.js - a MongoDB stand-in for dbtap's integration tests: speaks the wire protocol the way
 * mongod 6.0 (maxWireVersion 17) does to a driver - OP_QUERY/OP_REPLY for the legacy
 * handshake, OP_MSG (body and document sequences, checksum, moreToCome), OP_COMPRESSED with
 * zlib (negotiated in the handshake like mongod: replies compressed with the request's
 * compressor) - and answers a handful of commands from memory: hello/isMaster, ping,
 * buildInfo, find, getMore, killCursors, aggregate ($match, $limit), insert, update ($set,
 * $inc), delete, count; any other command fails with code 59 CommandNotFound, as mongod does.
 *
 * Usage: node stub.js PORT LOGFILE   (PORT 0: any free port). Listens on 127.0.0.1 and prints
 * "listening PORT" once bound. Every command handled is appended to LOGFILE as a line
 * "<command> <wire>" (wire: msg, query, compressed-msg...), getMores as "getMore:<origin>":
 * the server-side count the tests compare dbtap's with. Runs until SIGTERM/SIGINT.
 * Run it through a symlink named "mongod" to the node binary: dbtap recognises MongoDB
 * servers by their task name.
 */
'use strict';

const net = require('net');
const fs = require('fs');
const zlib = require('zlib');
const { BSON } = require('bson');

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_COMPRESSED = 2012;
const OP_MSG = 2013;
const MSG_CHECKSUM_PRESENT = 1 << 0;
const MSG_MORE_TO_COME = 1 << 1;
const COMPRESSOR_NOOP = 0;
const COMPRESSOR_ZLIB = 2;
const HDR_LEN = 16;
const MAX_WIRE_VERSION = 17; /* MongoDB 6.0 */
const DEFAULT_BATCH = 101;
const MAX_MESSAGE = 48000000;

const port = parseInt(process.argv[2] || '0', 10);
const logPath = process.argv[3];
const collections = new Map(); /* "db.coll" -> array of documents */
const cursors = new Map();     /* id (bigint) -> { docs, ns, origin } */
let nextRequestId = 1;
let nextCursorId = 1000n;
let connections = 0;
const logLines = [];

function log(line) {
	logLines.push(line);
	if (logPath)
		fs.appendFileSync(logPath, line + '\n');
}

function coll(db, name) {
	const ns = db + '.' + name;
	if (!collections.has(ns))
		collections.set(ns, []);
	return collections.get(ns);
}

/* ---- queries ---- */

function cmp(a, b) {
	if (typeof a === 'bigint' || typeof b === 'bigint') {
		a = BigInt(a);
		b = BigInt(b);
	}
	return a < b ? -1 : a > b ? 1 : 0;
}

function eq(a, b) {
	if (a && typeof a === 'object' && typeof a.equals === 'function')
		return a.equals(b);
	return a === b || (a !== undefined && b !== undefined && String(a) === String(b) &&
			   typeof a === typeof b);
}

function matchValue(v, cond) {
	if (cond && typeof cond === 'object' && !Array.isArray(cond) &&
	    Object.keys(cond).length && Object.keys(cond).every((k) => k.startsWith('$'))) {
		return Object.entries(cond).every(([op, arg]) => {
			switch (op) {
			case '$gt': return v !== undefined && cmp(v, arg) > 0;
			case '$gte': return v !== undefined && cmp(v, arg) >= 0;
			case '$lt': return v !== undefined && cmp(v, arg) < 0;
			case '$lte': return v !== undefined && cmp(v, arg) <= 0;
			case '$ne': return !eq(v, arg);
			case '$in': return arg.some((x) => eq(v, x));
			default: return false;
			}
		});
	}
	return eq(v, cond);
}

function matches(doc, filter) {
	return Object.entries(filter || {}).every(([k, c]) => matchValue(doc[k], c));
}

function applyUpdate(doc, u) {
	let changed = false;
	for (const [op, fields] of Object.entries(u)) {
		for (const [k, v] of Object.entries(fields)) {
			if (op === '$set' && !eq(doc[k], v)) {
				doc[k] = v;
				changed = true;
			} else if (op === '$inc') {
				doc[k] = (doc[k] || 0) + v;
				changed = true;
			}
		}
	}
	return changed;
}

function error(code, codeName, errmsg) {
	return { ok: 0.0, errmsg, code, codeName };
}

/* A cursor reply: the first @batch documents now, the rest for getMore. */
function cursorReply(docs, ns, batch, origin, field) {
	const first = docs.slice(0, batch);
	let id = 0n;
	if (docs.length > batch) {
		id = nextCursorId++;
		cursors.set(id, { docs: docs.slice(batch), ns, origin });
	}
	return { cursor: { [field]: first, id, ns }, ok: 1.0 };
}

/* ---- commands ---- */

function hello(cmd, conn) {
	const offered = cmd.compression || [];
	if (!conn.handshaken) {
		/* compression is negotiated on the first hello, as mongod does */
		conn.compression = offered.filter((c) => c === 'zlib' || c === 'noop');
		conn.handshaken = true;
	}
	return {
		helloOk: true,
		ismaster: true,
		isWritablePrimary: true,
		maxBsonObjectSize: 16 * 1024 * 1024,
		maxMessageSizeBytes: MAX_MESSAGE,
		maxWriteBatchSize: 100000,
		localTime: new Date(),
		connectionId: conn.id,
		minWireVersion: 0,
		maxWireVersion: MAX_WIRE_VERSION,
		readOnly: false,
		compression: conn.compression,
		ok: 1.0,
	};
}

function run(cmd, seqs, conn) {
	const name = Object.keys(cmd)[0];
	const db = cmd.$db || 'admin';
	const lname = name.toLowerCase();
	let docs, c, n, nModified;

	switch (lname) {
	case 'hello':
	case 'ismaster':
		return { name, reply: hello(cmd, conn) };
	case 'ping':
		return { name, reply: { ok: 1.0 } };
	case 'buildinfo':
		return { name, reply: { version: '6.0.0-dbtap-stub', maxWireVersion: MAX_WIRE_VERSION,
					ok: 1.0 } };
	case 'find':
		c = coll(db, cmd.find);
		docs = c.filter((d) => matches(d, cmd.filter));
		if (cmd.limit)
			docs = docs.slice(0, Number(cmd.limit));
		return { name, reply: cursorReply(docs, db + '.' + cmd.find,
						  Number(cmd.batchSize || DEFAULT_BATCH), 'find',
						  'firstBatch') };
	case 'aggregate':
		c = coll(db, cmd.aggregate);
		docs = c.slice();
		for (const stage of cmd.pipeline || []) {
			if (stage.$match)
				docs = docs.filter((d) => matches(d, stage.$match));
			else if (stage.$limit)
				docs = docs.slice(0, Number(stage.$limit));
		}
		return { name, reply: cursorReply(docs, db + '.' + cmd.aggregate,
						  Number((cmd.cursor && cmd.cursor.batchSize) ||
							 DEFAULT_BATCH), 'aggregate', 'firstBatch') };
	case 'getmore': {
		const id = BigInt(cmd.getMore);
		const cur = cursors.get(id);
		if (!cur)
			return { name, reply: error(43, 'CursorNotFound', `cursor id ${id} not found`) };
		const batch = Number(cmd.batchSize || DEFAULT_BATCH);
		const next = cur.docs.slice(0, batch);
		cur.docs = cur.docs.slice(batch);
		let rid = id;
		if (!cur.docs.length) {
			cursors.delete(id);
			rid = 0n;
		}
		return { name: 'getMore:' + cur.origin,
			 reply: { cursor: { nextBatch: next, id: rid, ns: cur.ns }, ok: 1.0 } };
	}
	case 'killcursors':
		for (const id of cmd.cursors || [])
			cursors.delete(BigInt(id));
		return { name, reply: { cursorsKilled: cmd.cursors || [], ok: 1.0 } };
	case 'insert':
		c = coll(db, cmd.insert);
		docs = seqs.documents || cmd.documents || [];
		docs.forEach((d) => c.push(d));
		return { name, reply: { n: docs.length, ok: 1.0 } };
	case 'update':
		c = coll(db, cmd.update);
		n = 0;
		nModified = 0;
		for (const st of seqs.updates || cmd.updates || []) {
			for (const d of c.filter((x) => matches(x, st.q))) {
				n++;
				if (applyUpdate(d, st.u))
					nModified++;
				if (!st.multi)
					break;
			}
		}
		return { name, reply: { n, nModified, ok: 1.0 } };
	case 'delete':
		c = coll(db, cmd.delete);
		n = 0;
		for (const st of seqs.deletes || cmd.deletes || []) {
			for (let i = 0; i < c.length;) {
				if (matches(c[i], st.q) && (!st.limit || n < st.limit)) {
					c.splice(i, 1);
					n++;
				} else {
					i++;
				}
			}
		}
		return { name, reply: { n, ok: 1.0 } };
	case 'count':
		c = coll(db, cmd.count);
		return { name, reply: { n: c.filter((d) => matches(d, cmd.query)).length, ok: 1.0 } };
	case 'endsessions':
		return { name, reply: { ok: 1.0 } };
	}
	return { name, reply: error(59, 'CommandNotFound', `no such command: '${name}'`) };
}

/* ---- wire protocol ---- */

function header(len, requestId, responseTo, opcode) {
	const h = Buffer.alloc(HDR_LEN);
	h.writeInt32LE(len, 0);
	h.writeInt32LE(requestId, 4);
	h.writeInt32LE(responseTo, 8);
	h.writeInt32LE(opcode, 12);
	return h;
}

const serialize = (doc) => BSON.serialize(doc);
const deserialize = (buf) => BSON.deserialize(buf, { useBigInt64: true });

function opMsg(responseTo, doc) {
	const body = serialize(doc);
	const flags = Buffer.alloc(4);
	const payload = Buffer.concat([flags, Buffer.from([0]), body]);
	return { opcode: OP_MSG, payload, responseTo };
}

function opReply(responseTo, doc) {
	const body = serialize(doc);
	const fixed = Buffer.alloc(20); /* responseFlags, cursorID, startingFrom, numberReturned */
	fixed.writeInt32LE(1, 16);
	return { opcode: OP_REPLY, payload: Buffer.concat([fixed, body]), responseTo };
}

function send(conn, m, compressor) {
	const id = nextRequestId++;
	let opcode = m.opcode;
	let payload = m.payload;
	if (compressor !== undefined) {
		const data = compressor === COMPRESSOR_ZLIB ? zlib.deflateSync(payload) : payload;
		const fixed = Buffer.alloc(9);
		fixed.writeInt32LE(opcode, 0);
		fixed.writeInt32LE(payload.length, 4);
		fixed.writeUInt8(compressor, 8);
		payload = Buffer.concat([fixed, data]);
		opcode = OP_COMPRESSED;
	}
	conn.sock.write(Buffer.concat([header(HDR_LEN + payload.length, id, m.responseTo, opcode),
				       payload]));
}

/* One message (header parsed) whose payload is @body; @compressor when it came compressed. */
function handle(conn, requestId, opcode, body, compressor) {
	const wire = (compressor !== undefined ? 'compressed-' : '') +
		     (opcode === OP_MSG ? 'msg' : 'query');
	let cmd, seqs = {}, flags = 0, result;

	if (opcode === OP_MSG) {
		flags = body.readUInt32LE(0);
		const end = body.length - (flags & MSG_CHECKSUM_PRESENT ? 4 : 0);
		for (let p = 4; p < end;) {
			const kind = body[p];
			const len = body.readInt32LE(p + 1);
			if (kind === 0) {
				cmd = deserialize(body.subarray(p + 1, p + 1 + len));
			} else {
				const sec = body.subarray(p + 5, p + 1 + len);
				const nul = sec.indexOf(0);
				const id = sec.subarray(0, nul).toString();
				const docs = [];
				for (let q = nul + 1; q < sec.length;) {
					const dl = sec.readInt32LE(q);
					docs.push(deserialize(sec.subarray(q, q + dl)));
					q += dl;
				}
				seqs[id] = docs;
			}
			p += 1 + len;
		}
		result = run(cmd, seqs, conn);
		log(`${result.name} ${wire}`);
		if (!(flags & MSG_MORE_TO_COME))
			send(conn, opMsg(requestId, result.reply), compressor);
	} else if (opcode === OP_QUERY) {
		const nul = body.indexOf(0, 4);
		const q = nul + 1 + 8;
		cmd = deserialize(body.subarray(q, q + body.readInt32LE(q)));
		result = run(cmd, seqs, conn);
		log(`${result.name} ${wire}`);
		send(conn, opReply(requestId, result.reply), compressor);
	} else {
		log(`unsupported-opcode-${opcode} ${wire}`);
	}
}

function onMessage(conn, msg) {
	const requestId = msg.readInt32LE(4);
	const opcode = msg.readInt32LE(12);
	const body = msg.subarray(HDR_LEN);

	if (opcode === OP_COMPRESSED) {
		const original = body.readInt32LE(0);
		const compressor = body.readUInt8(8);
		const data = body.subarray(9);
		const inner = compressor === COMPRESSOR_ZLIB ? zlib.inflateSync(data) : data;
		handle(conn, requestId, original, inner, compressor);
	} else {
		handle(conn, requestId, opcode, body, undefined);
	}
}

const server = net.createServer((sock) => {
	const conn = { sock, id: ++connections, buf: Buffer.alloc(0), handshaken: false,
		       compression: [] };
	sock.setNoDelay(true);
	sock.on('data', (data) => {
		conn.buf = Buffer.concat([conn.buf, data]);
		while (conn.buf.length >= 4) {
			const len = conn.buf.readInt32LE(0);
			if (len < HDR_LEN || len > MAX_MESSAGE) {
				sock.destroy();
				return;
			}
			if (conn.buf.length < len)
				break;
			const msg = conn.buf.subarray(0, len);
			conn.buf = conn.buf.subarray(len);
			try {
				onMessage(conn, msg);
			} catch (e) {
				process.stderr.write(`stub: ${e.stack}\n`);
				sock.destroy();
				return;
			}
		}
	});
	sock.on('error', () => {});
});

process.title = 'mongod';
for (const sig of ['SIGTERM', 'SIGINT'])
	process.on(sig, () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 200));
server.listen(port, '127.0.0.1', () => {
	process.stdout.write(`listening ${server.address().port}\n`);
});
