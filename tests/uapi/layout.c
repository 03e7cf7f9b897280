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
#define O(s, f) P(#s "." #f, offsetof(struct s, f))

int main(void)
{
	P("abi_version", IPMB_ABI_VERSION);
	P("max_data", IPMB_MAX_DATA);
	P("retries_default", IPMB_RETRIES_DEFAULT);
	P("max_retries", IPMB_MAX_RETRIES);
	P("max_timeout_ms", IPMB_MAX_TIMEOUT_MS);
	P("msg_broadcast", IPMB_MSG_BROADCAST);
	P("msg_synthesized", IPMB_MSG_SYNTHESIZED);
	P("kind_response", IPMB_KIND_RESPONSE);
	P("kind_request", IPMB_KIND_REQUEST);
	P("cc_timeout", IPMB_CC_TIMEOUT);
	P("cc_bus_error", IPMB_CC_BUS_ERROR);
	P("cc_too_long", IPMB_CC_TOO_LONG);
	P("cmd_default", IPMB_CMD_DEFAULT);

	P("ipmb_info", sizeof(struct ipmb_info));
	O(ipmb_info, adapter);
	O(ipmb_info, own_addr);
	O(ipmb_info, smbus_block_write);
	O(ipmb_info, max_frame_len);
	O(ipmb_info, queue_len);
	O(ipmb_info, tx_retries);
	O(ipmb_info, req_timeout_ms);
	O(ipmb_info, req_retries);
	O(ipmb_info, seq_count);
	O(ipmb_info, seq_expiry_ms);
	O(ipmb_info, max_clients);
	O(ipmb_info, inbox_len);
	O(ipmb_info, max_registrations);
	O(ipmb_info, reserved);

	P("ipmb_stats", sizeof(struct ipmb_stats));
	O(ipmb_stats, rx_frames);
	O(ipmb_stats, rx_short);
	O(ipmb_stats, rx_too_long);
	O(ipmb_stats, rx_bad_cs1);
	O(ipmb_stats, rx_bad_cs2);
	O(ipmb_stats, rx_bad_addr);
	O(ipmb_stats, rx_overflow);
	O(ipmb_stats, tx_frames);
	O(ipmb_stats, tx_errors);
	O(ipmb_stats, tx_retries);
	O(ipmb_stats, tx_invalid);
	O(ipmb_stats, req_sent);
	O(ipmb_stats, req_retries);
	O(ipmb_stats, req_timeouts);
	O(ipmb_stats, req_bus_errors);
	O(ipmb_stats, req_aborted);
	O(ipmb_stats, rsp_matched);
	O(ipmb_stats, rsp_late);
	O(ipmb_stats, rsp_duplicate);
	O(ipmb_stats, rx_routed);
	O(ipmb_stats, rx_route_overflow);
	O(ipmb_stats, rx_broadcast);
	O(ipmb_stats, tx_broadcast);
	O(ipmb_stats, rx_queued);
	O(ipmb_stats, req_inflight);
	O(ipmb_stats, rsp_to_writer);
	O(ipmb_stats, rsp_writer_gone);
	O(ipmb_stats, rsp_writer_full);
	O(ipmb_stats, tx_unnoted);
	O(ipmb_stats, reserved);

	P("ipmb_msg", sizeof(struct ipmb_msg));
	O(ipmb_msg, id);
	O(ipmb_msg, timeout_ms);
	O(ipmb_msg, data_len);
	O(ipmb_msg, retries);
	O(ipmb_msg, flags);
	O(ipmb_msg, kind);
	O(ipmb_msg, addr);
	O(ipmb_msg, netfn);
	O(ipmb_msg, lun);
	O(ipmb_msg, own_lun);
	O(ipmb_msg, seq);
	O(ipmb_msg, cmd);
	O(ipmb_msg, cc);
	O(ipmb_msg, reserved);
	O(ipmb_msg, data);

	P("ipmb_cmd", sizeof(struct ipmb_cmd));
	O(ipmb_cmd, netfn);
	O(ipmb_cmd, cmd);
	O(ipmb_cmd, flags);
	O(ipmb_cmd, reserved);

	P("ioc_info", IPMB_IOC_INFO);
	P("ioc_stats", IPMB_IOC_STATS);
	P("ioc_request", IPMB_IOC_REQUEST);
	P("ioc_submit", IPMB_IOC_SUBMIT);
	P("ioc_receive", IPMB_IOC_RECEIVE);
	P("ioc_register", IPMB_IOC_REGISTER);
	P("ioc_unregister", IPMB_IOC_UNREGISTER);
	P("ioc_respond", IPMB_IOC_RESPOND);
	return 0;
}
