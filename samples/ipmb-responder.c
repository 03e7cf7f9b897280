// SPDX-License-Identifier: GPL-2.0
/*
 * ipmb-responder: answers every request over IPMB: a few NetFn App ones with fixed values,
 * the rest with completion code 0xc1 (invalid command).
 *
 *   ipmb-responder [-c count] [-v] DEVICE
 *
 * Registers (IPMB_IOC_REGISTER) NetFn App commands 0x01 Get Device ID, 0x04 Get Self Test
 * Results, 0x07 Get ACPI Power State and 0x08 Get Device GUID, and the default route
 * (IPMB_CMD_DEFAULT: every request no other file registered by its pair, of any netFn), prints
 * "ready", then waits with poll() for POLLPRI, fetches the requests with IPMB_IOC_RECEIVE and
 * answers each with IPMB_IOC_RESPOND.
 *
 * -v prints one line per request:  rqSA=0x20 netfn=0x06 cmd=0x01 seq=5 -> cc=0x00
 * -c N exits 0 after N requests have been answered. SIGINT and SIGTERM exit 0; closing the
 * file releases the registrations. Exit status 2 on usage errors, a pair or the default route
 * already registered by another file (EBUSY), or a failed system call.
 */
#define _GNU_SOURCE		/* ppoll() */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/ipmb.h>

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))

#define EXIT_ERROR		2

#define MIN_ABI_VERSION		4	/* the default route, as of ABI version 4 */

#define NETFN_APP		0x06
#define CMD_GET_DEVICE_ID	0x01
#define CMD_GET_SELF_TEST	0x04
#define CMD_GET_ACPI_POWER	0x07
#define CMD_GET_DEVICE_GUID	0x08

#define CC_OK			0x00
#define CC_INVALID_CMD		0xc1
#define CC_REQ_LEN_INVALID	0xc7
#define CC_CANNOT_RETURN	0xca

/* Get Device ID (IPMI v2.0, 20.1), without the optional auxiliary firmware revision. */
static const __u8 device_id[] = {
	0x20,			/* device ID */
	0x01,			/* device revision 1, no device SDRs */
	0x01,			/* firmware major 1, device available */
	0x23,			/* firmware minor, BCD: 1.23 */
	0x02,			/* IPMI version 2.0 (BCD, low nibble major) */
	0x00,			/* additional device support: none of the optional command sets */
	0xa2, 0x02, 0x00,	/* manufacturer ID 0x0002a2, least significant byte first */
	0x01, 0x00,		/* product ID 0x0001, least significant byte first */
};

/* Get Self Test Results (20.4): 0x55, no error. */
static const __u8 self_test[] = { 0x55, 0x00 };

/* Get ACPI Power State (20.7): system S0/G0 working, device D0. */
static const __u8 acpi_power[] = { 0x00, 0x00 };

/* Get Device GUID (20.8): 16 fixed bytes, least significant byte first. */
static const __u8 device_guid[] = {
	0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
};

struct app_cmd {
	__u8 cmd;
	const char *name;
	const __u8 *data;
	__u16 len;
};

static const struct app_cmd app_cmds[] = {
	{ CMD_GET_DEVICE_ID, "Get Device ID", device_id, sizeof(device_id) },
	{ CMD_GET_SELF_TEST, "Get Self Test Results", self_test, sizeof(self_test) },
	{ CMD_GET_ACPI_POWER, "Get ACPI Power State", acpi_power, sizeof(acpi_power) },
	{ CMD_GET_DEVICE_GUID, "Get Device GUID", device_guid, sizeof(device_guid) },
};

static const char *prog = "ipmb-responder";
static volatile sig_atomic_t stop;

struct responder {
	const char *device;
	int fd;
	int verbose;
	unsigned long count;		/* exit after this many requests; 0: never */
	unsigned long answered;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-c count] [-v] DEVICE\n"
		"\n"
		"Answers NetFn App Get Device ID, Get Self Test Results, Get ACPI Power State\n"
		"and Get Device GUID requests on DEVICE (/dev/ipmb-N), and every other request\n"
		"no other file registered with 0xc1 (invalid command). Prints \"ready\" once\n"
		"registered.\n"
		"\n"
		"  -c count  exit 0 after answering count requests (0, the default: never)\n"
		"  -v        print one line per request\n"
		"\n"
		"SIGINT and SIGTERM exit 0. Exit status 2: error (a command or the default route\n"
		"registered elsewhere).\n",
		prog);
}

/* An unsigned number in C notation; no sign, no blanks, nothing after it. */
static int parse_num(const char *s, unsigned long *val)
{
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	*val = strtoul(s, &end, 0);
	if (errno || *end)
		return -1;
	return 0;
}

static int parse_args(int argc, char **argv, struct responder *r)
{
	int opt;

	while ((opt = getopt(argc, argv, "+c:vh")) != -1) {
		switch (opt) {
		case 'c':
			if (parse_num(optarg, &r->count)) {
				fprintf(stderr, "%s: invalid count '%s'\n", prog, optarg);
				return -1;
			}
			break;
		case 'v':
			r->verbose = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (argc - optind != 1) {
		usage(stderr);
		return -1;
	}
	r->device = argv[optind];
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * SIGINT and SIGTERM set stop. They stay blocked except inside ppoll(), so one arriving
 * between the check of stop and the wait cannot be missed. waitmask: the mask for ppoll().
 */
static int setup_signals(sigset_t *waitmask)
{
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &block, waitmask) ||
	    sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
		fprintf(stderr, "%s: signals: %s\n", prog, strerror(errno));
		return -1;
	}
	sigdelset(waitmask, SIGINT);
	sigdelset(waitmask, SIGTERM);
	return 0;
}

/* Checks that the file is an ipmb device with the responder ioctls. */
static int check_abi(const struct responder *r)
{
	struct ipmb_info info;

	memset(&info, 0, sizeof(info));
	if (ioctl(r->fd, IPMB_IOC_INFO, &info)) {
		fprintf(stderr, "%s: %s: IPMB_IOC_INFO failed: %s%s\n", prog, r->device,
			strerror(errno), errno == ENOTTY ? " (not an ipmb device?)" : "");
		return -1;
	}
	if (info.abi_version < MIN_ABI_VERSION) {
		fprintf(stderr,
			"%s: %s: ipmb ABI version %u: this program needs version %d or later; update ipmb.ko\n",
			prog, r->device, info.abi_version, MIN_ABI_VERSION);
		return -1;
	}
	return 0;
}

static int register_cmds(const struct responder *r)
{
	struct ipmb_cmd c;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(app_cmds); i++) {
		memset(&c, 0, sizeof(c));
		c.netfn = NETFN_APP;
		c.cmd = app_cmds[i].cmd;
		if (!ioctl(r->fd, IPMB_IOC_REGISTER, &c))
			continue;
		if (errno == EBUSY)
			fprintf(stderr,
				"%s: %s: netfn 0x%02x cmd 0x%02x (%s) is registered by another file\n",
				prog, r->device, c.netfn, c.cmd, app_cmds[i].name);
		else
			fprintf(stderr, "%s: %s: IPMB_IOC_REGISTER netfn 0x%02x cmd 0x%02x: %s\n",
				prog, r->device, c.netfn, c.cmd, strerror(errno));
		return -1;
	}
	/* Everything else, of any netFn, that no other file registered: answered 0xc1. */
	memset(&c, 0, sizeof(c));
	c.flags = IPMB_CMD_DEFAULT;
	if (ioctl(r->fd, IPMB_IOC_REGISTER, &c)) {
		if (errno == EBUSY)
			fprintf(stderr, "%s: %s: the default route is registered by another file\n",
				prog, r->device);
		else
			fprintf(stderr, "%s: %s: IPMB_IOC_REGISTER of the default route: %s\n",
				prog, r->device, strerror(errno));
		return -1;
	}
	return 0;
}

static const struct app_cmd *find_cmd(__u8 netfn, __u8 cmd)
{
	size_t i;

	if (netfn != NETFN_APP)
		return NULL;
	for (i = 0; i < ARRAY_SIZE(app_cmds); i++)
		if (app_cmds[i].cmd == cmd)
			return &app_cmds[i];
	return NULL;
}

static void set_answer(struct ipmb_msg *msg, __u8 cc, const __u8 *data, __u16 len)
{
	msg->cc = cc;
	msg->data_len = len;
	memset(msg->data, 0, sizeof(msg->data));
	if (len)
		memcpy(msg->data, data, len);
}

/*
 * Answers one request. A failed IPMB_IOC_RESPOND (the requester gone from the bus, say) is
 * reported and skipped; only a device that went away (ENODEV) is fatal.
 */
static int handle_request(struct responder *r, struct ipmb_msg *msg)
{
	const struct app_cmd *c = find_cmd(msg->netfn, msg->cmd);
	int ret, err = 0;

	if (!c)
		set_answer(msg, CC_INVALID_CMD, NULL, 0);
	else if (msg->data_len)		/* none of these commands takes request data */
		set_answer(msg, CC_REQ_LEN_INVALID, NULL, 0);
	else
		set_answer(msg, CC_OK, c->data, c->len);

	ret = ioctl(r->fd, IPMB_IOC_RESPOND, msg);
	if (ret && errno == EMSGSIZE && msg->data_len) {
		/* The answer does not fit the device's max_frame_len. */
		set_answer(msg, CC_CANNOT_RETURN, NULL, 0);
		ret = ioctl(r->fd, IPMB_IOC_RESPOND, msg);
	}
	if (ret)
		err = errno;
	r->answered++;

	if (r->verbose) {
		printf("rqSA=0x%02x netfn=0x%02x cmd=0x%02x seq=%u -> cc=0x%02x\n",
		       msg->addr, msg->netfn, msg->cmd, msg->seq, msg->cc);
		fflush(stdout);
	}
	if (err) {
		fprintf(stderr, "%s: %s: IPMB_IOC_RESPOND rqSA=0x%02x netfn=0x%02x cmd=0x%02x seq=%u: %s\n",
			prog, r->device, msg->addr, msg->netfn, msg->cmd, msg->seq, strerror(err));
		if (err == ENODEV)
			return -1;
	}
	return 0;
}

static int done(const struct responder *r)
{
	return stop || (r->count && r->answered >= r->count);
}

/* Receives and answers every message waiting for this file, until EAGAIN. */
static int drain(struct responder *r)
{
	struct ipmb_msg msg;

	while (!done(r)) {
		memset(&msg, 0, sizeof(msg));
		if (ioctl(r->fd, IPMB_IOC_RECEIVE, &msg)) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: %s: IPMB_IOC_RECEIVE failed: %s\n",
				prog, r->device, strerror(errno));
			return -1;
		}
		if (msg.data_len > IPMB_MAX_DATA) {
			fprintf(stderr, "%s: %s: received data_len %u (at most %d), ignored\n",
				prog, r->device, msg.data_len, IPMB_MAX_DATA);
			continue;
		}
		switch (msg.kind) {
		case IPMB_KIND_REQUEST:
			if (handle_request(r, &msg))
				return -1;
			break;
		case IPMB_KIND_RESPONSE:
			/* Never submitted anything: cannot happen, but harmless. */
			fprintf(stderr, "%s: %s: unexpected response (id %llu), ignored\n",
				prog, r->device, (unsigned long long)msg.id);
			break;
		default:
			fprintf(stderr, "%s: %s: message of unknown kind %u, ignored\n",
				prog, r->device, msg.kind);
			break;
		}
	}
	return 0;
}

static int serve(struct responder *r, const sigset_t *waitmask)
{
	struct pollfd pfd;

	while (!done(r)) {
		pfd.fd = r->fd;
		pfd.events = POLLPRI;
		pfd.revents = 0;
		if (ppoll(&pfd, 1, NULL, waitmask) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "%s: %s: poll: %s\n", prog, r->device, strerror(errno));
			return -1;
		}
		if ((pfd.revents & POLLPRI) && drain(r))
			return -1;
		if (!done(r) && (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))) {
			fprintf(stderr, "%s: %s: device gone (poll revents 0x%x)\n",
				prog, r->device, (unsigned int)pfd.revents);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct responder r;
	sigset_t waitmask;
	int ret = EXIT_ERROR;

	if (argc > 0 && argv[0] && argv[0][0]) {
		prog = strrchr(argv[0], '/');
		prog = prog ? prog + 1 : argv[0];
	}
	memset(&r, 0, sizeof(r));
	r.fd = -1;
	if (parse_args(argc, argv, &r) || setup_signals(&waitmask))
		return EXIT_ERROR;

	r.fd = open(r.device, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (r.fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, r.device, strerror(errno));
		return EXIT_ERROR;
	}
	if (check_abi(&r) || register_cmds(&r))
		goto out;
	printf("ready\n");
	if (fflush(stdout)) {
		fprintf(stderr, "%s: stdout: %s\n", prog, strerror(errno));
		goto out;
	}
	if (!serve(&r, &waitmask))
		ret = 0;
out:
	/* Releases the registrations and drops whatever is still in the inbox. */
	close(r.fd);
	return ret;
}
