/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * mongo_wire.h - MongoDB wire protocol and BSON constants (MongoDB Wire Protocol reference,
 * bsonspec.org), shared by the kernel decoder (mongo.bpf.h) and the userspace half
 * (mongo_user.c). Plain constants only.
 */
#ifndef DBTAP_MONGO_WIRE_H
#define DBTAP_MONGO_WIRE_H

/* opCode values */
#define MG_OPCODE_REPLY	       1
#define MG_OPCODE_UPDATE       2001
#define MG_OPCODE_INSERT       2002
#define MG_OPCODE_QUERY	       2004
#define MG_OPCODE_GET_MORE     2005
#define MG_OPCODE_DELETE       2006
#define MG_OPCODE_KILL_CURSORS 2007
#define MG_OPCODE_COMPRESSED   2012
#define MG_OPCODE_MSG	       2013

/* header and fixed fields */
#define MG_HDR_LEN	       16
#define MG_OFF_REQUEST_ID      4
#define MG_OFF_RESPONSE_TO     8
#define MG_OFF_OPCODE	       12
#define MG_MAX_MSG_LEN	       (48u * 1000 * 1000) /* maxMessageSizeBytes */
#define MG_MSG_FLAG_CHECKSUM   (1u << 0)	   /* checksumPresent: a CRC-32C ends the message */
#define MG_MSG_FLAG_MORE       (1u << 1)	   /* moreToCome */
#define MG_CHECKSUM_LEN	       4
#define MG_SECTION_BODY	       0
#define MG_SECTION_SEQUENCE    1
#define MG_MAX_SECTIONS	       8	 /* sections looked at in one OP_MSG */
#define MG_REPLY_QUERY_FAILURE (1u << 1) /* OP_REPLY responseFlags: QueryFailure */
#define MG_OFF_REPLY_DOCS      36	 /* OP_REPLY: header, flags, cursorID, from, returned */
#define MG_OFF_QUERY_NAME      20	 /* OP_QUERY: header, flags, fullCollectionName */
#define MG_QUERY_SKIP_RETURN   8	 /* OP_QUERY: numberToSkip, numberToReturn */
#define MG_OFF_COMP_ORIGINAL   16	 /* OP_COMPRESSED: originalOpcode */
#define MG_OFF_COMP_ID	       24	 /* OP_COMPRESSED: compressorId (after uncompressedSize) */
#define MG_COMP_HDR_LEN	       25

/* compressorId values */
#define MG_COMPRESSOR_NOOP   0
#define MG_COMPRESSOR_SNAPPY 1
#define MG_COMPRESSOR_ZLIB   2
#define MG_COMPRESSOR_ZSTD   3

/* BSON element types */
#define BSON_DOUBLE	 0x01
#define BSON_STRING	 0x02
#define BSON_DOCUMENT	 0x03
#define BSON_ARRAY	 0x04
#define BSON_BINARY	 0x05
#define BSON_UNDEFINED	 0x06
#define BSON_OBJECTID	 0x07
#define BSON_BOOL	 0x08
#define BSON_DATETIME	 0x09
#define BSON_NULL	 0x0a
#define BSON_REGEX	 0x0b
#define BSON_DBPOINTER	 0x0c
#define BSON_JS		 0x0d
#define BSON_SYMBOL	 0x0e
#define BSON_JS_SCOPE	 0x0f
#define BSON_INT32	 0x10
#define BSON_TIMESTAMP	 0x11
#define BSON_INT64	 0x12
#define BSON_DECIMAL128	 0x13
#define BSON_MINKEY	 0xff
#define BSON_MAXKEY	 0x7f
#define BSON_MIN_DOC_LEN 5 /* int32 length + terminating NUL */
#define BSON_OID_LEN	 12
#define BSON_DEC128_LEN	 16

#endif /* DBTAP_MONGO_WIRE_H */
