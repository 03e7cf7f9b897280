// SPDX-License-Identifier: GPL-2.0
/*
 * Calls IPMB_IOC_INFO and IPMB_IOC_STATS on a /dev/ipmb-N and prints every field as
 * "name value" lines; with a second argument (a responder address), also sends Get Device ID
 * with IPMB_IOC_REQUEST and IPMB_IOC_SUBMIT + IPMB_IOC_RECEIVE and prints the answers. Built
 * twice by `make check` (64-bit and -m32): the e2e tests run both in the guest and require
 * the same output, which exercises the compat ioctl path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/ipmb.h>

static void print_msg(const char *what, const struct ipmb_msg *m)
{
	int i;

	printf("%s kind %u flags %u addr %u netfn %u lun %u own_lun %u cmd %u cc %u",
	       what, m->kind, m->flags, m->addr, m->netfn, m->lun, m->own_lun, m->cmd, m->cc);
	printf(" reserved %u %u %u %u data", m->reserved[0], m->reserved[1], m->reserved[2],
	       m->reserved[3]);
	for (i = 0; i < m->data_len && i < IPMB_MAX_DATA; i++)
		printf(" %02x", m->data[i]);
	printf("\n");
}

/* Get Device ID from `addr`, synchronously and then asynchronously. */
static int request(int fd, __u8 addr)
{
	struct ipmb_msg m, r;
	__u64 id;

	memset(&m, 0, sizeof(m));
	m.addr = addr;
	m.netfn = 0x06;
	m.cmd = 0x01;
	m.retries = IPMB_RETRIES_DEFAULT;
	r = m;
	if (ioctl(fd, IPMB_IOC_REQUEST, &r)) {
		perror("IPMB_IOC_REQUEST");
		return 1;
	}
	print_msg("request", &r);
	r = m;
	if (ioctl(fd, IPMB_IOC_SUBMIT, &r)) {
		perror("IPMB_IOC_SUBMIT");
		return 1;
	}
	id = r.id;
	memset(&r, 0xa5, sizeof(r));
	if (ioctl(fd, IPMB_IOC_RECEIVE, &r)) {
		perror("IPMB_IOC_RECEIVE");
		return 1;
	}
	printf("receive_id_matches %d\n", r.id == id);
	print_msg("receive", &r);
	return 0;
}

int main(int argc, char **argv)
{
	struct ipmb_info info;
	struct ipmb_stats st;
	int fd, i;

	if (argc != 2 && argc != 3) {
		fprintf(stderr, "usage: %s /dev/ipmb-N [responder-address]\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	memset(&info, 0xa5, sizeof(info));
	memset(&st, 0xa5, sizeof(st));
	if (ioctl(fd, IPMB_IOC_INFO, &info) || ioctl(fd, IPMB_IOC_STATS, &st)) {
		perror("ioctl");
		return 1;
	}
	printf("abi_version %u\nadapter %u\nown_addr %u\nsmbus_block_write %u\n",
	       info.abi_version, info.adapter, info.own_addr, info.smbus_block_write);
	printf("max_frame_len %u\nqueue_len %u\ntx_retries %u\n",
	       info.max_frame_len, info.queue_len, info.tx_retries);
	printf("req_timeout_ms %u\nreq_retries %u\nseq_count %u\nseq_expiry_ms %u\n",
	       info.req_timeout_ms, info.req_retries, info.seq_count, info.seq_expiry_ms);
	printf("max_clients %u\ninbox_len %u\nmax_registrations %u\n", info.max_clients,
	       info.inbox_len, info.max_registrations);
	for (i = 0; i < 4; i++)
		printf("info_reserved%d %u\n", i, info.reserved[i]);
	printf("rx_frames %llu\nrx_bad_cs2 %llu\ntx_frames %llu\nrx_queued %llu\n",
	       (unsigned long long)st.rx_frames, (unsigned long long)st.rx_bad_cs2,
	       (unsigned long long)st.tx_frames, (unsigned long long)st.rx_queued);
	printf("req_sent %llu\nreq_inflight %llu\n",
	       (unsigned long long)st.req_sent, (unsigned long long)st.req_inflight);
	for (i = 0; i < (int)(sizeof(st.reserved) / sizeof(st.reserved[0])); i++)
		printf("stats_reserved%d %llu\n", i, (unsigned long long)st.reserved[i]);
	if (argc == 3 && request(fd, (__u8)strtoul(argv[2], NULL, 0)))
		return 1;
	/* A bad pointer is EFAULT, never a crash. */
	printf("bad_pointer_errno %d\n", ioctl(fd, IPMB_IOC_INFO, (void *)8) ? errno : 0);
	close(fd);
	return 0;
}
