/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ipmb.ko userspace ABI: ioctls on /dev/ipmb-N.
 *
 * read() and write() keep the byte layout of the in-tree ipmb_dev_int driver (see
 * Documentation/ipmb.rst); the ioctls below add what that driver lacks: requests with
 * kernel-managed sequence numbers, matching, timeouts and retries (synchronous or
 * asynchronous), responder registration, broadcast, and statistics. Unlike that driver, the
 * response to a request a file sent with write() goes to that file's read() (ABI version 4;
 * Documentation/ipmb.rst, "Responses to write() requests").
 *
 * Every structure has fixed-size fields and no implicit padding, so its layout is the same
 * for 32-bit and 64-bit userspace, and nothing uninitialised reaches userspace.
 *
 * Room for the future: reserved fields must be zero in what userspace passes in (EINVAL
 * otherwise) and are zero in what the kernel returns; a flag an ioctl does not know is EINVAL.
 * A later ABI version may give either a meaning, so a program that zeroes the structures it
 * passes keeps working.
 */
#ifndef _UAPI_LINUX_IPMB_H
#define _UAPI_LINUX_IPMB_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * The ABI version IPMB_IOC_INFO reports; raised when ioctls or fields are added. 3: struct
 * ipmb_msg has reserved[] (new size, so new ioctl numbers), unknown flags and non-zero
 * reserved fields are EINVAL, ipmb_info.max_registrations (a reserved field before).
 * 4: the default route (struct ipmb_cmd.flags, IPMB_CMD_DEFAULT; a reserved byte before),
 * responses to write() requests go to the writer's read(), and four counters in struct
 * ipmb_stats after req_inflight (reserved before). Sizes and ioctl numbers are those of 3.
 */
#define IPMB_ABI_VERSION	4

/* ioctl type (Documentation/userspace-api/ioctl/ioctl-number.rst: 0xBB is free). */
#define IPMB_IOC_MAGIC		0xBB

/* Room for data in struct ipmb_msg; a frame must also fit the device's max_frame_len. */
#define IPMB_MAX_DATA		240

/* struct ipmb_msg.retries: use the device's default (IPMB_IOC_INFO req_retries). */
#define IPMB_RETRIES_DEFAULT	0xff
/* Largest retries and timeout_ms a request may ask for. */
#define IPMB_MAX_RETRIES	15
#define IPMB_MAX_TIMEOUT_MS	60000

/*
 * struct ipmb_msg.flags. In: REQUEST and SUBMIT take IPMB_MSG_BROADCAST, RESPOND takes the
 * flags RECEIVE returned for the request (IPMB_MSG_BROADCAST, which changes nothing about the
 * response); any other bit is EINVAL.
 */
#define IPMB_MSG_BROADCAST	0x01	/* in: send to the general-call address, one try;
					 * out: the request was received as a broadcast */
#define IPMB_MSG_SYNTHESIZED	0x02	/* out: no response; the kernel set cc */

/* struct ipmb_msg.kind, as IPMB_IOC_RECEIVE returns it */
#define IPMB_KIND_RESPONSE	1	/* the answer to a request sent with IPMB_IOC_SUBMIT */
#define IPMB_KIND_REQUEST	2	/* a request for a pair registered by this file, or
					 * one the default route gave it */

/* Completion codes the kernel synthesizes (flag IPMB_MSG_SYNTHESIZED). */
#define IPMB_CC_TIMEOUT		0xc3	/* no response after every try, or no seq in time */
#define IPMB_CC_BUS_ERROR	0x82	/* NAK or bus error sending the request */
#define IPMB_CC_TOO_LONG	0xc8	/* the request does not fit max_frame_len */

/* IPMB_IOC_INFO: what this device is and how it is configured. */
struct ipmb_info {
	__u32 abi_version;		/* IPMB_ABI_VERSION */
	__u32 adapter;			/* I2C adapter number: the N of /dev/ipmb-N */
	__u8 own_addr;			/* own 8-bit slave address (0x20 for a BMC) */
	__u8 smbus_block_write;		/* 1: frames are sent as SMBus block writes */
	__u16 max_frame_len;		/* longest frame accepted, address byte included */
	__u32 queue_len;		/* read() queue capacity, in frames */
	__u32 tx_retries;		/* resends of a frame after a NAK or arbitration loss */
	__u32 req_timeout_ms;		/* default response timeout of a request, per try */
	__u32 req_retries;		/* default resends of a request after a timeout */
	__u32 seq_count;		/* sequence numbers: requests in flight at most (64) */
	__u32 seq_expiry_ms;		/* a seq is not reused for the same responder,
					 * netFn and cmd for this long (5000) */
	__u32 max_clients;		/* files that may use SUBMIT or REGISTER at once */
	__u32 inbox_len;		/* messages waiting for IPMB_IOC_RECEIVE, per file */
	__u32 max_registrations;	/* (netFn, cmd) pairs one file may register (256) */
	__u32 reserved[4];
};

/* IPMB_IOC_STATS: the counters of Documentation/ipmb.rst, as sysfs shows them. */
struct ipmb_stats {
	__u64 rx_frames;		/* frames received, checked and accepted */
	__u64 rx_short;			/* dropped: too short */
	__u64 rx_too_long;		/* dropped: longer than max_frame_len */
	__u64 rx_bad_cs1;		/* dropped: bad header checksum */
	__u64 rx_bad_cs2;		/* dropped: bad data checksum */
	__u64 rx_bad_addr;		/* dropped: odd requester address */
	__u64 rx_overflow;		/* dropped: read() queue full */
	__u64 tx_frames;		/* frames sent */
	__u64 tx_errors;		/* frames not sent after all resends */
	__u64 tx_retries;		/* resends after a NAK or arbitration loss */
	__u64 tx_invalid;		/* write() calls refused with EINVAL */
	__u64 req_sent;			/* requests submitted (REQUEST and SUBMIT) */
	__u64 req_retries;		/* requests resent after a response timeout */
	__u64 req_timeouts;		/* requests answered with IPMB_CC_TIMEOUT */
	__u64 req_bus_errors;		/* requests answered with IPMB_CC_BUS_ERROR */
	__u64 req_aborted;		/* requests abandoned: signal or close */
	__u64 rsp_matched;		/* responses delivered to their requester */
	__u64 rsp_late;			/* responses after their request timed out or was
					 * abandoned: dropped */
	__u64 rsp_duplicate;		/* second responses to an answered request: dropped */
	__u64 rx_routed;		/* requests delivered to a registered file */
	__u64 rx_route_overflow;	/* dropped: the registered file's inbox was full */
	__u64 rx_broadcast;		/* broadcast frames received for our address */
	__u64 tx_broadcast;		/* broadcast requests sent */
	__u64 rx_queued;		/* frames in the read() queue now */
	__u64 req_inflight;		/* requests waiting for a response now */
	/* ABI version 4: */
	__u64 rsp_to_writer;		/* responses delivered to the read() of the file
					 * that wrote the request */
	__u64 rsp_writer_gone;		/* responses to a write() request whose file was
					 * closed: queued for any reader */
	__u64 rsp_writer_full;		/* responses to a write() request whose file had no
					 * room left: queued for any reader */
	__u64 tx_unnoted;		/* write() requests sent without a note of their
					 * writer: their responses go to any reader */
	__u64 reserved[3];
};

/*
 * A request to send, a response or request received, or a response to send.
 *
 * IPMB_IOC_REQUEST and IPMB_IOC_SUBMIT read addr, netfn (even), lun (the responder's LUN),
 * own_lun (ours), cmd, data_len, data, flags (IPMB_MSG_BROADCAST), timeout_ms (0: default)
 * and retries (IPMB_RETRIES_DEFAULT: default). The kernel fills rqSA, the seq and both
 * checksums. REQUEST then waits and returns the response in the same structure: cc,
 * data_len and data (the response data after cc), seq, and flags (IPMB_MSG_SYNTHESIZED if
 * the kernel made the cc up). SUBMIT returns at once with id and seq set; the response
 * arrives later through IPMB_IOC_RECEIVE with the same id. With O_NONBLOCK, SUBMIT does not
 * wait for the transfer either: the kernel sends the request afterwards, and a send failure
 * arrives as IPMB_CC_BUS_ERROR. timeout_ms runs from when each try is on the wire. A request
 * that finds no usable seq waits for one (EAGAIN with O_NONBLOCK), at most timeout_ms; then
 * it ends unsent with IPMB_CC_TIMEOUT, as a request nobody answered (seq 0).
 *
 * IPMB_IOC_RECEIVE returns the next message for this file: a response (kind
 * IPMB_KIND_RESPONSE, fields as REQUEST returns them) or a request for a registered pair
 * (kind IPMB_KIND_REQUEST: addr is the requester's address, lun its LUN, own_lun the LUN it
 * addressed, seq its seq, cmd, data_len and data the request's; id is 0).
 *
 * IPMB_IOC_RESPOND takes a received request back as IPMB_IOC_RECEIVE returned it, with
 * cc, data_len and data set to the answer; the kernel builds the response (addresses,
 * netFn | 1, LUNs, seq, checksums).
 *
 * Fields an ioctl only returns (id, kind, seq, cc for requests) are ignored on input;
 * reserved must be zero (EINVAL otherwise) and is zero on output.
 */
struct ipmb_msg {
	__u64 id;			/* SUBMIT: out; RECEIVE: the id SUBMIT returned */
	__u32 timeout_ms;		/* requests: response timeout per try, 0: default */
	__u16 data_len;			/* bytes used in data[] */
	__u8 retries;			/* requests: resends after a timeout */
	__u8 flags;			/* IPMB_MSG_* */
	__u8 kind;			/* RECEIVE: IPMB_KIND_* */
	__u8 addr;			/* the peer's 8-bit slave address */
	__u8 netfn;			/* the request's netFn (even), also in responses */
	__u8 lun;			/* the peer's LUN */
	__u8 own_lun;			/* our LUN */
	__u8 seq;			/* the request's seq (out) */
	__u8 cmd;			/* command */
	__u8 cc;			/* responses: completion code */
	__u32 reserved[4];		/* zero */
	__u8 data[IPMB_MAX_DATA];
};

/*
 * IPMB_IOC_REGISTER / IPMB_IOC_UNREGISTER: a (netFn, cmd) pair this file answers, or with
 * flags IPMB_CMD_DEFAULT (netfn and cmd 0) the default route: every request no file
 * registered by its pair, of any netFn. A pair registered by a file beats the default route.
 * One file per pair and one per device for the default route: EBUSY if another file holds
 * it (the same file again is fine), ENOENT to unregister what this file does not hold. A file
 * holds at most ipmb_info.max_registrations pairs (ENOSPC beyond); the default route is not
 * one of them.
 */
struct ipmb_cmd {
	__u8 netfn;			/* request netFn (even); 0 with IPMB_CMD_DEFAULT */
	__u8 cmd;			/* 0 with IPMB_CMD_DEFAULT */
	__u8 flags;			/* IPMB_CMD_*; any other bit is EINVAL (ABI 4) */
	__u8 reserved;			/* zero */
};

/* struct ipmb_cmd.flags */
#define IPMB_CMD_DEFAULT	0x01	/* the default route, not one pair */

#define IPMB_IOC_INFO		_IOR(IPMB_IOC_MAGIC, 0x00, struct ipmb_info)
#define IPMB_IOC_STATS		_IOR(IPMB_IOC_MAGIC, 0x01, struct ipmb_stats)
#define IPMB_IOC_REQUEST	_IOWR(IPMB_IOC_MAGIC, 0x02, struct ipmb_msg)
#define IPMB_IOC_SUBMIT		_IOWR(IPMB_IOC_MAGIC, 0x03, struct ipmb_msg)
#define IPMB_IOC_RECEIVE	_IOR(IPMB_IOC_MAGIC, 0x04, struct ipmb_msg)
#define IPMB_IOC_REGISTER	_IOW(IPMB_IOC_MAGIC, 0x05, struct ipmb_cmd)
#define IPMB_IOC_UNREGISTER	_IOW(IPMB_IOC_MAGIC, 0x06, struct ipmb_cmd)
#define IPMB_IOC_RESPOND	_IOW(IPMB_IOC_MAGIC, 0x07, struct ipmb_msg)

#endif /* _UAPI_LINUX_IPMB_H */
