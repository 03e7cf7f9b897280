// SPDX-License-Identifier: GPL-2.0
/*
 * ioctl and file-operation fuzzer for /dev/ipmb-N, built 64-bit and -m32 (the compat path).
 *
 *   ioctl_fuzz CALLS SEED DEV...
 *
 * Opens several files on each device (blocking and O_NONBLOCK) and makes CALLS random calls
 * on them (requests and frames go to the own addresses of the first two devices, from
 * IPMB_IOC_INFO, so that several fuzzers can run at once on pairs of their own): ioctls with random commands (the eight of ipmb.h, the same numbers with another
 * size, direction or type, and random words), read(), write(), poll(), lseek(), close and
 * reopen; arguments point to a valid buffer holding random or almost-valid structures, or
 * to NULL, an unmapped page, a read-only page, the last bytes before an unmapped page (the
 * structure crosses the end of the mapping), a kernel address or an odd address. An interval
 * timer interrupts calls that wait (every 2 ms), so blocked requests are aborted too.
 *
 * Only error codes may come back: a call fails if it succeeds where it must not (an unknown
 * command, a bad pointer, a structure with reserved bits or unknown flags, a write() of a
 * malformed frame), if it fails with an errno outside the documented set, or if what it
 * returns is malformed (reserved fields not zero, lengths out of range, a read() whose length
 * byte disagrees with its count). At the end every file is closed, and the counters of each
 * device must hold together: req_sent = rsp_matched + req_timeouts + req_bus_errors +
 * req_aborted + req_inflight, no request in flight, the read() queue within its capacity.
 * Prints "calls N ok N errors N unexpected N" and the counts per errno; exits 1 on any
 * unexpected result.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/ipmb.h>

#define MAX_DEVS	4
#define FDS_PER_DEV	6
#define PAGE		4096

static const unsigned long known[] = {
	IPMB_IOC_INFO, IPMB_IOC_STATS, IPMB_IOC_REQUEST, IPMB_IOC_SUBMIT,
	IPMB_IOC_RECEIVE, IPMB_IOC_REGISTER, IPMB_IOC_UNREGISTER, IPMB_IOC_RESPOND,
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

/* Errors a call on /dev/ipmb-N may give (Documentation/ipmb.rst). */
static const int allowed[] = {
	EFAULT, EINVAL, ENOTTY, EAGAIN, EINTR, ENODEV, EMFILE, ENOSPC, ENOENT, EBUSY,
	EIO, ENXIO, ETIMEDOUT, EEXIST, ESPIPE, EMSGSIZE,
};
#define NALLOWED (sizeof(allowed) / sizeof(allowed[0]))

static int errcount[256];
static unsigned long calls, oks, errors, unexpected;
static unsigned char *rw, *ro, *hole;	/* two pages RW then an unmapped page; a RO page */
static const char *devs[MAX_DEVS];
static int ndevs;
static int fds[MAX_DEVS][FDS_PER_DEV];

static uint64_t rng;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static uint32_t below(uint32_t n)
{
	return n ? rnd() % n : 0;
}

static void bad(const char *what, unsigned long cmd, int ret, int err)
{
	unexpected++;
	if (unexpected <= 20)
		fprintf(stderr, "unexpected: %s cmd %#lx ret %d errno %d (%s)\n", what, cmd, ret,
			err, strerror(err));
}

/* Books a call's result; returns 1 if it succeeded. */
static int book(const char *what, unsigned long cmd, long ret, int err, int must_fail)
{
	size_t i;

	calls++;
	if (ret >= 0) {
		oks++;
		if (must_fail)
			bad(what, cmd, (int)ret, 0);
		return 1;
	}
	errors++;
	if (err >= 0 && err < 256)
		errcount[err]++;
	for (i = 0; i < NALLOWED; i++)
		if (allowed[i] == err)
			return 0;
	bad(what, cmd, (int)ret, err);
	return 0;
}

enum ptr_kind { P_VALID, P_NULL, P_HOLE, P_RO, P_PARTIAL, P_KERNEL, P_ODD, P_KINDS };

/* A pointer of a random kind for an argument of `size` bytes; *kind says which. */
static void *pick_ptr(size_t size, enum ptr_kind *kind)
{
	uint32_t r = below(100);

	if (r < 55) {
		*kind = P_VALID;
		return rw + below(PAGE);	/* room for 4 KiB: every argument fits */
	}
	*kind = (enum ptr_kind)(1 + below(P_KINDS - 1));
	switch (*kind) {
	case P_NULL:
		return NULL;
	case P_HOLE:
		return hole + below(PAGE);
	case P_RO:
		return ro;
	case P_PARTIAL:
		/* The argument starts in the last mapped page and ends in the hole. */
		return hole - 1 - below(size > 1 ? (uint32_t)size - 1 : 1);
	case P_KERNEL:
		return (void *)(uintptr_t)(sizeof(long) == 8 ? 0xffff888000001000ULL : 0xc0001000UL);
	default:
		return rw + PAGE + 1;	/* odd, mapped and writable: like a valid pointer */
	}
}

/*
 * Whether an access of n bytes at p (a pointer of that kind) must fault. The last bytes
 * before the hole fault only if the access reaches into it; n == 0 never faults.
 */
static int faults(enum ptr_kind kind, const unsigned char *p, size_t n)
{
	if (n == 0 || kind == P_VALID || kind == P_ODD)
		return 0;
	if (kind == P_PARTIAL)
		return (size_t)(hole - p) < n;
	return 1;
}

/* Random bytes, or an almost-valid structure for a known command. */
static void fill(unsigned char *p, size_t size, unsigned long cmd, const unsigned char *peers)
{
	size_t i;

	for (i = 0; i < size; i++)
		p[i] = (unsigned char)rnd();
	if (below(4) == 0)
		return;
	if (cmd == IPMB_IOC_REGISTER || cmd == IPMB_IOC_UNREGISTER) {
		struct ipmb_cmd c = {
			.netfn = (__u8)(below(4) ? 0x30 : rnd()),
			.cmd = (__u8)below(8),
			.reserved = below(8) ? 0 : (__u16)rnd(),
		};
		memcpy(p, &c, sizeof(c) < size ? sizeof(c) : size);
	} else if (cmd == IPMB_IOC_REQUEST || cmd == IPMB_IOC_SUBMIT || cmd == IPMB_IOC_RESPOND) {
		struct ipmb_msg m;

		memset(&m, 0, sizeof(m));
		m.addr = below(4) ? peers[below(2)] : (__u8)rnd();
		m.netfn = (__u8)(below(4) ? 0x30 : rnd());
		m.cmd = (__u8)below(8);
		m.lun = (__u8)below(5);
		m.own_lun = (__u8)below(5);
		m.data_len = (__u16)(below(8) ? below(30) : rnd());
		m.timeout_ms = below(8) ? 1 + below(20) : rnd();
		m.retries = (__u8)(below(8) ? below(2) : rnd());
		m.flags = (__u8)(below(8) ? below(2) : rnd());
		m.kind = (__u8)rnd();
		m.seq = (__u8)below(64);
		m.cc = (__u8)rnd();
		if (!below(16))
			m.reserved[below(4)] = rnd() | 1;
		for (i = 0; i < IPMB_MAX_DATA; i++)
			m.data[i] = (__u8)rnd();
		memcpy(p, &m, sizeof(m) < size ? sizeof(m) : size);
	}
}

/* The command to call: one of ipmb.h, one of them changed, or a random word. */
static unsigned long pick_cmd(int *is_known)
{
	unsigned long cmd = known[below(NKNOWN)];
	uint32_t r = below(100);

	*is_known = 0;
	if (r < 70) {
		*is_known = 1;
		return cmd;
	}
	if (r < 80)
		cmd = (cmd & ~(0x3fffUL << _IOC_SIZESHIFT)) | ((unsigned long)below(1024) << _IOC_SIZESHIFT);
	else if (r < 87)
		cmd = (cmd & ~(3UL << _IOC_DIRSHIFT)) | ((unsigned long)below(4) << _IOC_DIRSHIFT);
	else if (r < 93)
		cmd = (cmd & ~(0xffUL << _IOC_NRSHIFT)) | below(32);
	else if (r < 96)
		cmd = (cmd & ~(0xffUL << _IOC_TYPESHIFT)) | ((unsigned long)(rnd() & 0xff) << _IOC_TYPESHIFT);
	else
		cmd = rnd();
	for (size_t i = 0; i < NKNOWN; i++)
		if (known[i] == cmd)
			*is_known = 1;
	return cmd;
}

/* Whether the reserved words of a structure returned by the kernel are zero. */
static int zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	while (n--)
		if (*b++)
			return 0;
	return 1;
}

static void check_output(unsigned long cmd, const void *arg)
{
	if (cmd == IPMB_IOC_INFO) {
		const struct ipmb_info *i = arg;

		if (i->abi_version != IPMB_ABI_VERSION || !zero(i->reserved, sizeof(i->reserved)))
			bad("INFO output", cmd, 0, 0);
	} else if (cmd == IPMB_IOC_STATS) {
		const struct ipmb_stats *s = arg;

		if (!zero(s->reserved, sizeof(s->reserved)) || s->req_inflight > 64)
			bad("STATS output", cmd, 0, 0);
	} else if (cmd == IPMB_IOC_REQUEST || cmd == IPMB_IOC_RECEIVE || cmd == IPMB_IOC_SUBMIT) {
		const struct ipmb_msg *m = arg;

		if (!zero(m->reserved, sizeof(m->reserved)) || m->data_len > IPMB_MAX_DATA)
			bad("message output", cmd, 0, 0);
		if (cmd == IPMB_IOC_RECEIVE && m->kind != IPMB_KIND_RESPONSE &&
		    m->kind != IPMB_KIND_REQUEST)
			bad("RECEIVE kind", cmd, 0, 0);
		if (cmd == IPMB_IOC_REQUEST && m->kind != IPMB_KIND_RESPONSE)
			bad("REQUEST kind", cmd, 0, 0);
	}
}

/* Input a known command must refuse with EINVAL whatever else holds. */
static int invalid_input(unsigned long cmd, const unsigned char *p)
{
	if (cmd == IPMB_IOC_REGISTER || cmd == IPMB_IOC_UNREGISTER) {
		const struct ipmb_cmd *c = (const void *)p;

		return c->reserved != 0 || (c->netfn & 1) || c->netfn > 0x3f;
	}
	if (cmd == IPMB_IOC_REQUEST || cmd == IPMB_IOC_SUBMIT) {
		const struct ipmb_msg *m = (const void *)p;

		return !zero(m->reserved, sizeof(m->reserved)) || (m->flags & ~IPMB_MSG_BROADCAST) ||
		       (m->netfn & 1) || m->netfn > 0x3f || m->data_len > IPMB_MAX_DATA ||
		       m->timeout_ms > IPMB_MAX_TIMEOUT_MS || (m->addr & 1) || m->lun > 3 ||
		       m->own_lun > 3 ||
		       (m->retries > IPMB_MAX_RETRIES && m->retries != IPMB_RETRIES_DEFAULT);
	}
	if (cmd == IPMB_IOC_RESPOND) {
		const struct ipmb_msg *m = (const void *)p;

		return !zero(m->reserved, sizeof(m->reserved)) || (m->flags & ~IPMB_MSG_BROADCAST) ||
		       m->data_len > IPMB_MAX_DATA;
	}
	return 0;
}

static void do_ioctl(int fd, const unsigned char *peers)
{
	int is_known, ok;
	unsigned long cmd = pick_cmd(&is_known);
	size_t size = _IOC_SIZE(cmd);
	enum ptr_kind kind;
	unsigned char *p = pick_ptr(size ? size : 8, &kind);
	int must_fail = !is_known;
	int writes_user = (_IOC_DIR(cmd) & _IOC_READ) != 0;
	long ret;

	/* A random command may claim up to 16 KiB: only the first page after p is ours. */
	if (kind == P_VALID)
		fill(p, size < PAGE ? size : PAGE, cmd, peers);
	if (is_known && kind != P_RO && faults(kind, p, size))
		must_fail = 1;
	if (is_known && kind == P_RO && writes_user)
		must_fail = 1;
	if (is_known && (kind == P_VALID || kind == P_RO) && invalid_input(cmd, p))
		must_fail = 1;
	ret = ioctl(fd, cmd, p);
	ok = book("ioctl", cmd, ret, errno, must_fail);
	if (!ok && !is_known && errno != ENOTTY)
		bad("unknown command not ENOTTY", cmd, (int)ret, errno);
	if (ok && is_known && kind == P_VALID)
		check_output(cmd, p);
}

/* A frame for write(): valid (to a peer or anywhere), or broken in one random way. */
static size_t make_frame(unsigned char *b, const unsigned char *peers, int *valid)
{
	size_t n = 6 + below(30), i;
	unsigned char s = 0;

	b[1] = below(4) ? peers[below(2)] : (unsigned char)(rnd() & 0xfe);
	b[2] = (unsigned char)((0x30 | (below(2))) << 2);
	b[3] = (unsigned char)(-(b[1] + b[2]));
	b[4] = 0x20;
	b[5] = (unsigned char)(below(64) << 2);
	for (i = 6; i < n; i++)
		b[i] = (unsigned char)rnd();
	for (i = 4; i < n; i++)
		s += b[i];
	b[n] = (unsigned char)-s;
	b[0] = (unsigned char)n;
	*valid = 1;
	if (below(3) == 0) {
		b[1 + below((uint32_t)n)] ^= (unsigned char)(1 + below(255));
		*valid = -1;	/* may still be valid by chance: not judged */
	}
	return n + 1;
}

static void do_write(int fd, const unsigned char *peers)
{
	enum ptr_kind kind;
	int valid = 0;
	size_t len = below(300);
	unsigned char *p = pick_ptr(len ? len : 1, &kind);
	int must_fail = 0;
	long ret;

	if (kind == P_VALID) {
		if (below(4))
			len = make_frame(p, peers, &valid);
		else
			for (size_t i = 0; i < len; i++)
				p[i] = (unsigned char)rnd();
	}
	/* write() reads all len bytes. */
	if (kind != P_RO && faults(kind, p, len))
		must_fail = 1;
	if (len == 0 || len > 241)
		must_fail = 1;
	ret = write(fd, p, len);
	if (book("write", 0, ret, errno, must_fail) && valid == 1 && (size_t)ret != len)
		bad("write count", 0, (int)ret, 0);
}

static void do_read(int fd)
{
	enum ptr_kind kind;
	size_t len = below(300);
	unsigned char *p = pick_ptr(len ? len : 1, &kind);
	long ret;

	/* read() writes at most the frame's bytes: judged by what it returned. */
	ret = read(fd, p, len);
	if (ret > 0 && faults(kind, p, (size_t)ret))
		bad("read into memory it cannot write", 0, (int)ret, 0);
	if (book("read", 0, ret, errno, 0) &&
	    kind == P_VALID && ret > 0 && ret == (long)len && (size_t)p[0] + 1 < len)
		bad("read length byte", 0, (int)ret, 0);
}

static void reopen(int d, int k)
{
	if (fds[d][k] >= 0)
		close(fds[d][k]);
	/* One blocking file per device: calls that wait cost up to a timer period. */
	fds[d][k] = open(devs[d], O_RDWR | (k ? O_NONBLOCK : 0));
	book("open", 0, fds[d][k], errno, 0);
}

static void on_alarm(int sig)
{
	(void)sig;
}

static int check_stats(int d)
{
	struct ipmb_stats s;
	int fd = open(devs[d], O_RDWR), ok = 1;
	__u64 done;

	if (fd < 0 || ioctl(fd, IPMB_IOC_STATS, &s)) {
		perror(devs[d]);
		return 0;
	}
	close(fd);
	done = s.rsp_matched + s.req_timeouts + s.req_bus_errors + s.req_aborted + s.req_inflight;
	printf("%s: req_sent %llu = rsp_matched %llu + req_timeouts %llu + req_bus_errors %llu + "
	       "req_aborted %llu + req_inflight %llu%s; tx_frames %llu tx_invalid %llu rx_frames "
	       "%llu rx_queued %llu\n", devs[d], (unsigned long long)s.req_sent,
	       (unsigned long long)s.rsp_matched, (unsigned long long)s.req_timeouts,
	       (unsigned long long)s.req_bus_errors, (unsigned long long)s.req_aborted,
	       (unsigned long long)s.req_inflight, done == s.req_sent ? "" : " (MISMATCH)",
	       (unsigned long long)s.tx_frames, (unsigned long long)s.tx_invalid,
	       (unsigned long long)s.rx_frames, (unsigned long long)s.rx_queued);
	if (done != s.req_sent || s.req_inflight != 0)
		ok = 0;
	return ok;
}

int main(int argc, char **argv)
{
	unsigned long n, i;
	unsigned char peers[2] = { 0x20, 0x72 };
	struct sigaction sa;
	struct itimerval it = { { 0, 2000 }, { 0, 2000 } };
	int d, k, ok = 1;

	if (argc < 4) {
		fprintf(stderr, "usage: %s CALLS SEED DEV...\n", argv[0]);
		return 2;
	}
	n = strtoul(argv[1], NULL, 0);
	rng = strtoull(argv[2], NULL, 0) * 2654435761ULL + 1;
	for (d = 0; d < argc - 3 && d < MAX_DEVS; d++)
		devs[ndevs++] = argv[3 + d];
	rw = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (rw == MAP_FAILED || ro == MAP_FAILED || munmap(rw + 2 * PAGE, PAGE)) {
		perror("mmap");
		return 2;
	}
	hole = rw + 2 * PAGE;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: waiting calls end with EINTR */
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	for (d = 0; d < ndevs; d++)
		for (k = 0; k < FDS_PER_DEV; k++) {
			fds[d][k] = -1;
			reopen(d, k);
		}
	for (d = 0; d < ndevs && d < 2; d++) {
		struct ipmb_info info;

		if (fds[d][0] < 0 || ioctl(fds[d][0], IPMB_IOC_INFO, &info)) {
			perror(devs[d]);
			return 2;
		}
		peers[d] = info.own_addr;
	}
	for (i = 0; i < n; i++) {
		int fd;
		long ret;
		struct pollfd pfd;

		d = (int)below((uint32_t)ndevs);
		k = (int)below(FDS_PER_DEV);
		if (fds[d][k] < 0) {
			reopen(d, k);
			continue;
		}
		fd = fds[d][k];
		switch (below(20)) {
		case 0:
			reopen(d, k);
			break;
		case 1:
			pfd.fd = fd;
			pfd.events = (short)rnd();
			/* The call first: in one argument list errno may be read before it. */
			ret = poll(&pfd, 1, 0);
			book("poll", 0, ret, errno, 0);
			break;
		case 2:
			ret = lseek(fd, (off_t)below(100), (int)below(3)) < 0 ? -1 : 0;
			book("lseek", 0, ret, errno, 0);
			break;
		case 3:
		case 4:
			do_write(fd, peers);
			break;
		case 5:
		case 6:
			do_read(fd);
			break;
		default:
			do_ioctl(fd, peers);
			break;
		}
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	for (d = 0; d < ndevs; d++)
		for (k = 0; k < FDS_PER_DEV; k++)
			if (fds[d][k] >= 0)
				close(fds[d][k]);
	printf("calls %lu ok %lu errors %lu unexpected %lu\n", calls, oks, errors, unexpected);
	printf("errno");
	for (d = 0; d < 256; d++)
		if (errcount[d])
			printf(" %s:%d", strerror(d), errcount[d]);
	printf("\n");
	/* Requests in flight end with their files; a sync one cut by the timer is aborted. */
	for (d = 0; d < ndevs; d++)
		ok &= check_stats(d);
	return unexpected || !ok ? 1 : 0;
}
