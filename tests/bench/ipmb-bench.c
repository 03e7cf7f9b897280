// SPDX-License-Identifier: GPL-2.0
/*
 * ipmb-bench: the measuring half of `make bench`, run in the guest by tests/bench.py. Each
 * subcommand does one measurement and prints "key value" lines; "samples" lines list one
 * figure per event (ns). Nothing here judges the figures.
 *
 *   drain DEV RUN CMD      opens DEV (/dev/ipmb-N, either driver), reads every frame in a
 *                          thread while CMD is written to RUN (the vbus load source's
 *                          debugfs file, tests/vbus/load.rs: it returns when the last frame
 *                          is on the wire), then until the queue stays empty for 200 ms.
 *                          Prints read (frames), last_read_ns, and the CPUs the writer and
 *                          the reader ended on (writer_cpu, reader_cpu). IPMB_BENCH_WRITER_CPU
 *                          and IPMB_BENCH_READER_CPU in the environment pin either.
 *   readcost DEV RUN CMD   opens DEV, writes CMD to RUN with nobody reading (the frames stay
 *                          queued: CMD plays fewer than the queue holds), then times one
 *                          poll() that finds a frame (poll_ready_ns), one read() per queued
 *                          frame (samples: ns each), the read() that finds the queue empty
 *                          (read_empty_ns, EAGAIN) and a poll() that finds nothing
 *                          (poll_empty_ns, no wait): the read path without wake-ups.
 *   latency DEV RUN STATS N CMD
 *                          N times: a reader blocked in read(); another thread writes CMD
 *                          (one frame) to RUN; the reader's return time minus the start of
 *                          the frame's STOP callback (STATS last_stop_ns). samples: ns.
 *   req-kernel DEV ADDR N  N requests with IPMB_IOC_REQUEST to ADDR (8-bit), NetFn App,
 *                          commands 01 04 07 08 in turn. samples: ns per round trip;
 *                          starts: each one's start (CLOCK_MONOTONIC ns), as for the two
 *                          below. IPMB_BENCH_WRITER_CPU pins the requester, as for these.
 *   req-user DEV ADDR N SEQ0
 *                          the same with write(), then poll() and read() until the response
 *                          with our seq and cmd comes (as OpenBMC's ipmbbridged does), seqs
 *                          from SEQ0 on.
 *   req-ipmi DEV N         the same through the IPMI message handler (/dev/ipmiN of
 *                          ipmi_ipmb + ipmi_devintf): IPMICTL_SEND_COMMAND to the BMC, poll(),
 *                          IPMICTL_RECEIVE_MSG_TRUNC.
 *   sleep N US             N times clock_nanosleep() for US microseconds. samples: ns slept.
 *   close DEV              opens DEV and closes it: close_ns (the last close).
 *   write FILE TEXT        writes TEXT to FILE (a sysfs unbind or bind): write_ns.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/ipmb.h>
#include <linux/ipmi.h>

#define NETFN_APP	0x06
#define MAX_SAMPLES	100000

static const uint8_t cmds[] = { 0x01, 0x04, 0x07, 0x08 };

static void die(const char *what)
{
	fprintf(stderr, "ipmb-bench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		die(path);
	if (write(fd, text, strlen(text)) < 0)
		die(path);
	close(fd);
}

/* The value of `key` in a "key value" file (the load source's stats). */
static int64_t read_key(const char *path, const char *key)
{
	char line[256], name[64];
	long long v;
	FILE *f = fopen(path, "r");

	if (!f)
		die(path);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lld", name, &v) == 2 && !strcmp(name, key)) {
			fclose(f);
			return v;
		}
	}
	fclose(f);
	errno = ENOENT;
	die(key);
	return 0;
}

static int64_t samples[MAX_SAMPLES];
/* The req-* commands: when each request started (CLOCK_MONOTONIC, ns). */
static int64_t starts[MAX_SAMPLES];

static void print_list(const char *key, const int64_t *v, int n)
{
	printf("%s", key);
	for (int i = 0; i < n; i++)
		printf(" %lld", (long long)v[i]);
	printf("\n");
}

static void print_samples(int n)
{
	print_list("samples", samples, n);
}

/* The req-* commands' output: the round trips, and when each started. */
static void print_requests(int n)
{
	print_samples(n);
	print_list("starts", starts, n);
}

/* drain */

/* Pins the calling thread to the CPU named by the environment variable `var`, if set. */
static void pin_from_env(const char *var)
{
	const char *v = getenv(var);
	cpu_set_t set;

	if (!v || !*v)
		return;
	CPU_ZERO(&set);
	CPU_SET(atoi(v), &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die(var);
}

struct drain {
	int fd;
	int cpu;
	volatile int done;	/* the load has returned */
	long frames;
	int64_t last_ns;
};

static void *drain_thread(void *arg)
{
	struct drain *d = arg;
	struct pollfd p = { .fd = d->fd, .events = POLLIN };
	char buf[512];

	pin_from_env("IPMB_BENCH_READER_CPU");
	for (;;) {
		int r = poll(&p, 1, 200);

		if (r < 0 && errno != EINTR)
			die("poll");
		if (r == 0 && d->done)
			return NULL;
		while (read(d->fd, buf, sizeof(buf)) > 0) {
			d->frames++;
			d->last_ns = now_ns();
		}
		d->cpu = sched_getcpu();
	}
}

static int cmd_drain(char **argv)
{
	struct drain d = { 0 };
	pthread_t t;

	d.fd = open(argv[0], O_RDWR | O_NONBLOCK);
	if (d.fd < 0)
		die(argv[0]);
	if (pthread_create(&t, NULL, drain_thread, &d))
		die("pthread_create");
	pin_from_env("IPMB_BENCH_WRITER_CPU");
	write_file(argv[1], argv[2]);
	d.done = 1;
	pthread_join(t, NULL);
	printf("read %ld\nlast_read_ns %lld\nwriter_cpu %d\nreader_cpu %d\n", d.frames,
	       (long long)d.last_ns, sched_getcpu(), d.cpu);
	close(d.fd);
	return 0;
}

/* readcost */

static int cmd_readcost(char **argv)
{
	int fd = open(argv[0], O_RDWR | O_NONBLOCK);
	struct pollfd p = { .events = POLLIN };
	int64_t t0, poll_ready, read_empty, poll_empty;
	char buf[512];
	int n = 0;

	if (fd < 0)
		die(argv[0]);
	p.fd = fd;
	write_file(argv[1], argv[2]);
	t0 = now_ns();
	if (poll(&p, 1, 0) != 1)
		die("poll (a frame queued)");
	poll_ready = now_ns() - t0;
	for (;;) {
		ssize_t r;

		t0 = now_ns();
		r = read(fd, buf, sizeof(buf));
		if (r < 0)
			break;
		if (n < MAX_SAMPLES)
			samples[n++] = now_ns() - t0;
	}
	read_empty = now_ns() - t0;
	if (errno != EAGAIN)
		die("read");
	t0 = now_ns();
	if (poll(&p, 1, 0) != 0)
		die("poll (queue empty)");
	poll_empty = now_ns() - t0;
	printf("poll_ready_ns %lld\nread_empty_ns %lld\npoll_empty_ns %lld\n",
	       (long long)poll_ready, (long long)read_empty, (long long)poll_empty);
	print_samples(n);
	close(fd);
	return 0;
}

/* latency */

struct loader {
	const char *run, *cmd;
	int n;
	sem_t go, sent;
};

static void *loader_thread(void *arg)
{
	struct loader *l = arg;
	struct timespec settle = { .tv_nsec = 1000000 };

	for (int i = 0; i < l->n; i++) {
		sem_wait(&l->go);
		/* Let the reader block in read() first. */
		nanosleep(&settle, NULL);
		write_file(l->run, l->cmd);
		sem_post(&l->sent);
	}
	return NULL;
}

static int cmd_latency(char **argv)
{
	struct loader l = { .run = argv[1], .n = atoi(argv[3]), .cmd = argv[4] };
	const char *stats = argv[2];
	char buf[512];
	pthread_t t;
	int fd = open(argv[0], O_RDWR);

	if (fd < 0)
		die(argv[0]);
	if (l.n > MAX_SAMPLES)
		l.n = MAX_SAMPLES;
	sem_init(&l.go, 0, 0);
	sem_init(&l.sent, 0, 0);
	if (pthread_create(&t, NULL, loader_thread, &l))
		die("pthread_create");
	for (int i = 0; i < l.n; i++) {
		int64_t ret;

		sem_post(&l.go);
		if (read(fd, buf, sizeof(buf)) <= 0)
			die("read");
		ret = now_ns();
		sem_wait(&l.sent);
		samples[i] = ret - read_key(stats, "last_stop_ns");
	}
	pthread_join(t, NULL);
	close(fd);
	print_samples(l.n);
	return 0;
}

/* requests */

static uint8_t csum(const uint8_t *p, int n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return -s;
}

static int cmd_req_kernel(char **argv)
{
	int fd = open(argv[0], O_RDWR), n = atoi(argv[2]);
	uint8_t addr = strtoul(argv[1], NULL, 0);

	pin_from_env("IPMB_BENCH_WRITER_CPU");

	if (fd < 0)
		die(argv[0]);
	for (int i = 0; i < n && i < MAX_SAMPLES; i++) {
		struct ipmb_msg m = {
			.addr = addr, .netfn = NETFN_APP, .cmd = cmds[i % sizeof(cmds)],
			.retries = IPMB_RETRIES_DEFAULT,
		};
		int64_t t0 = now_ns();

		if (ioctl(fd, IPMB_IOC_REQUEST, &m) < 0)
			die("IPMB_IOC_REQUEST");
		samples[i] = now_ns() - t0;
		starts[i] = t0;
		if (m.cc || (m.flags & IPMB_MSG_SYNTHESIZED)) {
			fprintf(stderr, "ipmb-bench: request %d: cc 0x%02x flags 0x%x\n", i, m.cc,
				m.flags);
			return 1;
		}
	}
	close(fd);
	print_requests(n);
	return 0;
}

static int cmd_req_user(char **argv)
{
	int fd = open(argv[0], O_RDWR | O_NONBLOCK), n = atoi(argv[2]), seq0 = atoi(argv[3]);
	uint8_t addr = strtoul(argv[1], NULL, 0), own = 0x20;
	struct pollfd p = { .events = POLLIN };

	pin_from_env("IPMB_BENCH_WRITER_CPU");

	if (fd < 0)
		die(argv[0]);
	p.fd = fd;
	for (int i = 0; i < n && i < MAX_SAMPLES; i++) {
		uint8_t seq = (seq0 + i) % 64, cmd = cmds[i % sizeof(cmds)];
		uint8_t f[8] = { 7, addr, NETFN_APP << 2, 0, own, seq << 2, cmd, 0 };
		uint8_t in[512];
		int64_t t0;

		f[3] = csum(f + 1, 2);
		f[7] = csum(f + 4, 3);
		t0 = now_ns();
		if (write(fd, f, sizeof(f)) != sizeof(f))
			die("write");
		for (;;) {
			ssize_t r;

			if (poll(&p, 1, 2000) <= 0) {
				fprintf(stderr, "ipmb-bench: request %d: no response\n", i);
				return 1;
			}
			r = read(fd, in, sizeof(in));
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r < 0)
				die("read");
			/* [len][rqSA][netFn|LUN][cs1][rsSA][seq|LUN][cmd][cc]... */
			if (r >= 8 && in[2] >> 2 == (NETFN_APP | 1) && in[4] == addr &&
			    in[5] >> 2 == seq && in[6] == cmd)
				break;
		}
		samples[i] = now_ns() - t0;
		starts[i] = t0;
	}
	close(fd);
	print_requests(n);
	return 0;
}

static int cmd_req_ipmi(char **argv)
{
	int fd = open(argv[0], O_RDWR), n = atoi(argv[1]);
	struct pollfd p = { .events = POLLIN };

	pin_from_env("IPMB_BENCH_WRITER_CPU");

	if (fd < 0)
		die(argv[0]);
	p.fd = fd;
	for (int i = 0; i < n && i < MAX_SAMPLES; i++) {
		struct ipmi_system_interface_addr bmc = {
			.addr_type = IPMI_SYSTEM_INTERFACE_ADDR_TYPE, .channel = IPMI_BMC_CHANNEL,
		};
		struct ipmi_req req = {
			.addr = (unsigned char *)&bmc, .addr_len = sizeof(bmc), .msgid = i,
			.msg = { .netfn = NETFN_APP, .cmd = cmds[i % sizeof(cmds)] },
		};
		struct ipmi_addr from;
		unsigned char data[256];
		struct ipmi_recv recv = {
			.addr = (unsigned char *)&from, .addr_len = sizeof(from),
			.msg = { .data = data, .data_len = sizeof(data) },
		};
		int64_t t0 = now_ns();

		if (ioctl(fd, IPMICTL_SEND_COMMAND, &req) < 0)
			die("IPMICTL_SEND_COMMAND");
		if (poll(&p, 1, 2000) <= 0) {
			fprintf(stderr, "ipmb-bench: request %d: no response\n", i);
			return 1;
		}
		if (ioctl(fd, IPMICTL_RECEIVE_MSG_TRUNC, &recv) < 0)
			die("IPMICTL_RECEIVE_MSG_TRUNC");
		samples[i] = now_ns() - t0;
		starts[i] = t0;
		if (recv.msgid != i || recv.msg.data_len < 1 || data[0] != 0) {
			fprintf(stderr, "ipmb-bench: request %d: msgid %ld cc 0x%02x\n", i,
				recv.msgid, recv.msg.data_len ? data[0] : 0xff);
			return 1;
		}
	}
	close(fd);
	print_requests(n);
	return 0;
}

static int cmd_sleep(char **argv)
{
	int n = atoi(argv[0]);
	struct timespec ts = { .tv_nsec = atol(argv[1]) * 1000 };

	if (n > MAX_SAMPLES)
		n = MAX_SAMPLES;
	for (int i = 0; i < n; i++) {
		int64_t t0 = now_ns();

		clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		samples[i] = now_ns() - t0;
	}
	print_samples(n);
	return 0;
}

static int cmd_close(char **argv)
{
	int fd = open(argv[0], O_RDWR);
	int64_t t0;

	if (fd < 0)
		die(argv[0]);
	t0 = now_ns();
	close(fd);
	printf("close_ns %lld\n", (long long)(now_ns() - t0));
	return 0;
}

static int cmd_write(char **argv)
{
	int64_t t0 = now_ns();

	write_file(argv[0], argv[1]);
	printf("write_ns %lld\n", (long long)(now_ns() - t0));
	return 0;
}

static const struct {
	const char *name;
	int args;
	int (*fn)(char **argv);
} subcommands[] = {
	{ "drain", 3, cmd_drain },
	{ "readcost", 3, cmd_readcost },
	{ "latency", 5, cmd_latency },
	{ "req-kernel", 3, cmd_req_kernel },
	{ "req-user", 4, cmd_req_user },
	{ "req-ipmi", 2, cmd_req_ipmi },
	{ "sleep", 2, cmd_sleep },
	{ "close", 1, cmd_close },
	{ "write", 2, cmd_write },
};

int main(int argc, char **argv)
{
	for (size_t i = 0; argc >= 2 && i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (!strcmp(argv[1], subcommands[i].name)) {
			if (argc - 2 != subcommands[i].args)
				break;
			return subcommands[i].fn(argv + 2);
		}
	}
	fprintf(stderr, "usage: see the comment at the top of tests/bench/ipmb-bench.c\n");
	return 2;
}
