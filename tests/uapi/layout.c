// SPDX-License-Identifier: GPL-2.0
/*
 * Prints the sizes, offsets and ioctl numbers of include/uapi/linux/ipmb.h as the C (or C++)
 * compiler sees them. tests/host compares them with the Rust mirrors in rust/uapi.rs, for
 * 64-bit and 32-bit (-m32) userspace. Built with -Wall -Werror.
 */
#include <stddef.h>
#include <stdio.h>
#include <linux/ipmb.h>

#define P(name, value) printf("%s %lu\n", name, (unsigned long)(value))

int main(void)
{
	P("abi_version", IPMB_ABI_VERSION);
	P("info_size", sizeof(struct ipmb_info));
	P("info_adapter", offsetof(struct ipmb_info, adapter));
	P("info_own_addr", offsetof(struct ipmb_info, own_addr));
	P("info_smbus_block_write", offsetof(struct ipmb_info, smbus_block_write));
	P("info_max_frame_len", offsetof(struct ipmb_info, max_frame_len));
	P("info_queue_len", offsetof(struct ipmb_info, queue_len));
	P("info_tx_retries", offsetof(struct ipmb_info, tx_retries));
	P("info_reserved", offsetof(struct ipmb_info, reserved));
	P("stats_size", sizeof(struct ipmb_stats));
	P("stats_rx_queued", offsetof(struct ipmb_stats, rx_queued));
	P("stats_tx_invalid", offsetof(struct ipmb_stats, tx_invalid));
	P("stats_reserved", offsetof(struct ipmb_stats, reserved));
	P("ioc_info", IPMB_IOC_INFO);
	P("ioc_stats", IPMB_IOC_STATS);
	return 0;
}
