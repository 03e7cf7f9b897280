// SPDX-License-Identifier: GPL-2.0
/*
 * ipmb-raw: send one IPMI request over IPMB and print the response, like `ipmitool raw`.
 *
 *   ipmb-raw [-t timeout_ms] [-r retries] [-l lun] [-b] [-q] DEVICE RSSA NETFN CMD [DATA...]
 *
 * The request goes out with IPMB_IOC_REQUEST: the kernel picks the sequence number, sends the
 * frame, waits for the matching response and resends after a timeout. Output:
 *
 *   cc=0x00 (ok) seq=3
 *    20 01 01 23 02 00 a2 02 00 01 00
 *
 * followed, for a successful Get Device ID (NetFn App, cmd 0x01) and without -q, by the
 * decoded fields. -q prints the data line only.
 *
 * Exit status: 0 if the completion code is 0, 1 if it is not (including the ones the kernel
 * synthesizes, such as 0xc3 for no response), 2 on usage errors and failed system calls.
 */
#define _POSIX_C_SOURCE 200809L	/* O_CLOEXEC, getopt() */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/ipmb.h>

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#define EXIT_CC			1	/* the response has a non-zero completion code */
#define EXIT_ERROR		2	/* usage error or failed system call */

#define MIN_ABI_VERSION		3	/* struct ipmb_msg as of ABI version 3 */

#define NETFN_APP		0x06
#define CMD_GET_DEVICE_ID	0x01
#define DEVICE_ID_CORE_LEN	11	/* Get Device ID response data up to the product ID */
#define DEVICE_ID_FULL_LEN	15	/* ... and the auxiliary firmware revision */

static const char *prog = "ipmb-raw";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-t timeout_ms] [-r retries] [-l lun] [-b] [-q] DEVICE RSSA NETFN CMD [DATA...]\n"
		"\n"
		"Sends an IPMI request over IPMB (IPMB_IOC_REQUEST) and prints the response.\n"
		"Numbers are in C notation: 0x72, 114, 0162.\n"
		"\n"
		"  DEVICE         /dev/ipmb-N\n"
		"  RSSA           the responder's 8-bit slave address (even, 0..0xfe)\n"
		"  NETFN          the request's netFn (even, 0..0x3e)\n"
		"  CMD            command (0..0xff)\n"
		"  DATA           request data bytes (0..0xff each, at most %d)\n"
		"  -t timeout_ms  response timeout per try (0..%d; 0, the default: the device's)\n"
		"  -r retries     resends after a timeout (0..%d; default: the device's)\n"
		"  -l lun         the responder's LUN (0..3, default 0)\n"
		"  -b             broadcast (general call address, never resent)\n"
		"  -q             print the response data line only\n"
		"\n"
		"Exit status: 0 completion code 0, 1 non-zero completion code, 2 error.\n",
		prog, IPMB_MAX_DATA, IPMB_MAX_TIMEOUT_MS, IPMB_MAX_RETRIES);
}

/*
 * Parses an unsigned number in C notation (decimal, 0x hex, 0 octal) no larger than max.
 * strtoul() would also accept leading blanks and a sign (wrapping "-1"): refused here.
 */
static int parse_num(const char *s, unsigned long max, unsigned long *val)
{
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	*val = strtoul(s, &end, 0);
	if (errno || *end || *val > max)
		return -1;
	return 0;
}

/* parse_num() with an error message naming the argument and the range, hex above 0xff. */
static int parse_arg(const char *what, const char *s, unsigned long min, unsigned long max,
		     unsigned long *val)
{
	if (parse_num(s, max, val) || *val < min) {
		fprintf(stderr, max >= 0x3f && max <= 0xff ?
			"%s: invalid %s '%s' (%#lx..%#lx)\n" : "%s: invalid %s '%s' (%lu..%lu)\n",
			prog, what, s, min, max);
		return -1;
	}
	return 0;
}

/* Like parse_arg(), for values that must also be even (addresses, request netFns). */
static int parse_even(const char *what, const char *s, unsigned long max, unsigned long *val)
{
	if (parse_arg(what, s, 0, max, val))
		return -1;
	if (*val & 1) {
		fprintf(stderr, "%s: invalid %s '%s': must be even\n", prog, what, s);
		return -1;
	}
	return 0;
}

/* Options and operands into msg (zeroed by the caller). Returns -1 after a message. */
static int parse_args(int argc, char **argv, struct ipmb_msg *msg, const char **device,
		      int *quiet)
{
	unsigned long v;
	int opt, i, ndata;

	msg->retries = IPMB_RETRIES_DEFAULT;
	while ((opt = getopt(argc, argv, "+t:r:l:bqh")) != -1) {
		switch (opt) {
		case 't':
			if (parse_arg("timeout", optarg, 0, IPMB_MAX_TIMEOUT_MS, &v))
				return -1;
			msg->timeout_ms = v;
			break;
		case 'r':
			if (parse_arg("retries", optarg, 0, IPMB_MAX_RETRIES, &v))
				return -1;
			msg->retries = v;
			break;
		case 'l':
			if (parse_arg("LUN", optarg, 0, 3, &v))
				return -1;
			msg->lun = v;
			break;
		case 'b':
			msg->flags |= IPMB_MSG_BROADCAST;
			break;
		case 'q':
			*quiet = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (argc - optind < 4) {
		usage(stderr);
		return -1;
	}
	*device = argv[optind];
	if (parse_even("responder address", argv[optind + 1], 0xfe, &v))
		return -1;
	msg->addr = v;
	if (parse_even("netFn", argv[optind + 2], 0x3f, &v))
		return -1;
	msg->netfn = v;
	if (parse_arg("command", argv[optind + 3], 0, 0xff, &v))
		return -1;
	msg->cmd = v;

	ndata = argc - optind - 4;
	if (ndata > IPMB_MAX_DATA) {
		fprintf(stderr, "%s: %d data bytes, at most %d\n", prog, ndata, IPMB_MAX_DATA);
		return -1;
	}
	for (i = 0; i < ndata; i++) {
		if (parse_arg("data byte", argv[optind + 4 + i], 0, 0xff, &v))
			return -1;
		msg->data[i] = v;
	}
	msg->data_len = ndata;
	return 0;
}

/* Checks that fd is an ipmb device with the request ioctls. */
static int check_abi(int fd, const char *device)
{
	struct ipmb_info info;

	memset(&info, 0, sizeof(info));
	if (ioctl(fd, IPMB_IOC_INFO, &info)) {
		if (errno == ENOTTY)
			fprintf(stderr, "%s: %s: IPMB_IOC_INFO failed: %s (not an ipmb device?)\n",
				prog, device, strerror(errno));
		else
			fprintf(stderr, "%s: %s: IPMB_IOC_INFO failed: %s\n",
				prog, device, strerror(errno));
		return -1;
	}
	if (info.abi_version < MIN_ABI_VERSION) {
		fprintf(stderr,
			"%s: %s: ipmb ABI version %u: this program needs version %d or later; update ipmb.ko\n",
			prog, device, info.abi_version, MIN_ABI_VERSION);
		return -1;
	}
	return 0;
}

/* What the kernel means by the completion codes it synthesizes. */
static const char *synthesized_cc_name(unsigned int cc)
{
	switch (cc) {
	case IPMB_CC_TIMEOUT:
		return "timeout";
	case IPMB_CC_BUS_ERROR:
		return "bus error";
	case IPMB_CC_TOO_LONG:
		return "request too long";
	default:
		return NULL;
	}
}

/* The completion codes of IPMI v2.0, table 5-2. */
static const char *cc_name(unsigned int cc)
{
	static const char *const generic[] = {
		[0x00] = "node busy",
		[0x01] = "invalid command",
		[0x02] = "invalid for LUN",
		[0x03] = "timeout",
		[0x04] = "out of space",
		[0x05] = "reservation canceled",
		[0x06] = "request data truncated",
		[0x07] = "request data length invalid",
		[0x08] = "request data field length limit exceeded",
		[0x09] = "parameter out of range",
		[0x0a] = "cannot return requested number of bytes",
		[0x0b] = "not present",
		[0x0c] = "invalid data field",
		[0x0d] = "illegal for sensor or record type",
		[0x0e] = "response unavailable",
		[0x0f] = "duplicated request",
		[0x10] = "SDR repository in update mode",
		[0x11] = "firmware update mode",
		[0x12] = "BMC initialization in progress",
		[0x13] = "destination unavailable",
		[0x14] = "insufficient privilege",
		[0x15] = "not supported in present state",
		[0x16] = "sub-function disabled",
	};

	if (cc == 0x00)
		return "ok";
	if (cc >= 0xc0 && cc - 0xc0 < ARRAY_SIZE(generic))
		return generic[cc - 0xc0];
	if (cc == 0xff)
		return "unspecified error";
	if (cc <= 0x7e)
		return "OEM";
	if (cc >= 0x80 && cc <= 0xbe)
		return "command-specific";
	return "reserved";
}

static void print_cc(const struct ipmb_msg *msg)
{
	const char *name = NULL;

	if (msg->flags & IPMB_MSG_SYNTHESIZED)
		name = synthesized_cc_name(msg->cc);
	printf("cc=0x%02x (%s%s) seq=%u\n", msg->cc, name ? name : cc_name(msg->cc),
	       msg->flags & IPMB_MSG_SYNTHESIZED ? ", synthesized" : "", msg->seq);
}

/* The response data as ipmitool raw prints it, on one line: " 20 01 00 ...". */
static void print_data(const __u8 *data, unsigned int len)
{
	unsigned int i;

	for (i = 0; i < len; i++)
		printf(" %02x", data[i]);
	putchar('\n');
}

/*
 * Get Device ID response data (IPMI v2.0, 20.1), laid out like `ipmitool mc info`. A short
 * response prints the fields it holds completely, then says how short it is.
 */
static void print_device_id(const __u8 *d, unsigned int len)
{
	unsigned long mfg;
	unsigned int product;

	if (len >= 1)
		printf("Device ID                 : %u\n", d[0]);
	if (len >= 2) {
		printf("Device Revision           : %u\n", d[1] & 0x0f);
		printf("Provides Device SDRs      : %s\n", d[1] & 0x80 ? "yes" : "no");
	}
	if (len >= 3)
		printf("Device Available          : %s\n",
		       d[2] & 0x80 ? "no (update in progress)" : "yes");
	/* Major in binary (bits 6:0), minor in BCD: 0x01 0x23 is 1.23. */
	if (len >= 4)
		printf("Firmware Revision         : %u.%02x\n", d[2] & 0x7f, d[3]);
	/* BCD, least significant digit in the high nibble: 0x02 is 2.0, 0x51 is 1.5. */
	if (len >= 5)
		printf("IPMI Version              : %x.%x\n", d[4] & 0x0f, d[4] >> 4);
	if (len >= 6)
		printf("Additional Device Support : 0x%02x\n", d[5]);
	/* 20 bits, least significant byte first. */
	if (len >= 9) {
		mfg = d[6] | (unsigned long)d[7] << 8 | (unsigned long)(d[8] & 0x0f) << 16;
		printf("Manufacturer ID           : %lu (0x%06lx)\n", mfg, mfg);
	}
	if (len >= 11) {
		product = d[9] | (unsigned int)d[10] << 8;
		printf("Product ID                : %u (0x%04x)\n", product, product);
	}
	if (len >= DEVICE_ID_FULL_LEN)
		printf("Aux Firmware Rev Info     : 0x%02x 0x%02x 0x%02x 0x%02x\n",
		       d[11], d[12], d[13], d[14]);
	if (len < DEVICE_ID_CORE_LEN)
		printf("(short Get Device ID response: %u of %d bytes)\n", len, DEVICE_ID_CORE_LEN);
}

int main(int argc, char **argv)
{
	struct ipmb_msg msg;
	const char *device = NULL;
	__u8 netfn, cmd;
	int quiet = 0;
	int fd;

	if (argc > 0 && argv[0] && argv[0][0]) {
		prog = strrchr(argv[0], '/');
		prog = prog ? prog + 1 : argv[0];
	}
	memset(&msg, 0, sizeof(msg));
	if (parse_args(argc, argv, &msg, &device, &quiet))
		return EXIT_ERROR;
	netfn = msg.netfn;
	cmd = msg.cmd;

	fd = open(device, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, device, strerror(errno));
		return EXIT_ERROR;
	}
	if (check_abi(fd, device)) {
		close(fd);
		return EXIT_ERROR;
	}
	if (ioctl(fd, IPMB_IOC_REQUEST, &msg)) {
		fprintf(stderr, "%s: %s: IPMB_IOC_REQUEST failed: %s\n",
			prog, device, strerror(errno));
		close(fd);
		return EXIT_ERROR;
	}
	close(fd);
	if (msg.data_len > IPMB_MAX_DATA) {
		fprintf(stderr, "%s: %s: the driver returned data_len %u (at most %d)\n",
			prog, device, msg.data_len, IPMB_MAX_DATA);
		return EXIT_ERROR;
	}

	if (!quiet)
		print_cc(&msg);
	print_data(msg.data, msg.data_len);
	if (!quiet && !msg.cc && netfn == NETFN_APP && cmd == CMD_GET_DEVICE_ID)
		print_device_id(msg.data, msg.data_len);
	if (fflush(stdout)) {
		fprintf(stderr, "%s: stdout: %s\n", prog, strerror(errno));
		return EXIT_ERROR;
	}
	return msg.cc ? EXIT_CC : 0;
}
