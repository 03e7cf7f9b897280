/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * ipmb.ko userspace ABI: ioctls on /dev/ipmb-N.
 *
 * read() and write() keep the byte layout of the in-tree ipmb_dev_int driver (see
 * Documentation/ipmb.rst); the ioctls below add what that driver lacks. Every structure
 * has fixed-size fields and no implicit padding, so its layout is the same for 32-bit and
 * 64-bit userspace, and nothing uninitialised reaches userspace. Reserved fields are zero.
 */
#ifndef _UAPI_LINUX_IPMB_H
#define _UAPI_LINUX_IPMB_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* The ABI version IPMB_IOC_INFO reports; raised when ioctls are added. */
#define IPMB_ABI_VERSION	1

/* ioctl type (Documentation/userspace-api/ioctl/ioctl-number.rst: 0xBB is free). */
#define IPMB_IOC_MAGIC		0xBB

/* IPMB_IOC_INFO: what this device is and how it is configured. */
struct ipmb_info {
	__u32 abi_version;		/* IPMB_ABI_VERSION */
	__u32 adapter;			/* I2C adapter number: the N of /dev/ipmb-N */
	__u8 own_addr;			/* own 8-bit slave address (0x20 for a BMC) */
	__u8 smbus_block_write;		/* 1: write() sends SMBus block writes */
	__u16 max_frame_len;		/* longest frame accepted, address byte included */
	__u32 queue_len;		/* receive queue capacity, in frames */
	__u32 tx_retries;		/* retries of a write() after a NAK or arbitration loss */
	__u32 reserved[5];
};

/* IPMB_IOC_STATS: the counters of Documentation/ipmb.rst, as sysfs shows them. */
struct ipmb_stats {
	__u64 rx_frames;		/* frames received, checked and queued */
	__u64 rx_short;			/* dropped: too short */
	__u64 rx_too_long;		/* dropped: longer than max_frame_len */
	__u64 rx_bad_cs1;		/* dropped: bad header checksum */
	__u64 rx_bad_cs2;		/* dropped: bad data checksum */
	__u64 rx_bad_addr;		/* dropped: odd requester address */
	__u64 rx_overflow;		/* dropped: receive queue full */
	__u64 tx_frames;		/* frames sent */
	__u64 tx_errors;		/* write() calls failed after all retries */
	__u64 tx_retries;		/* retransmissions */
	__u64 tx_invalid;		/* write() calls refused with EINVAL */
	__u64 rx_queued;		/* frames in the receive queue now */
	__u64 reserved[4];
};

#define IPMB_IOC_INFO		_IOR(IPMB_IOC_MAGIC, 0x00, struct ipmb_info)
#define IPMB_IOC_STATS		_IOR(IPMB_IOC_MAGIC, 0x01, struct ipmb_stats)

#endif /* _UAPI_LINUX_IPMB_H */
