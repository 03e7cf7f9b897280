// SPDX-License-Identifier: GPL-2.0
/*
 * Calls IPMB_IOC_INFO and IPMB_IOC_STATS on a /dev/ipmb-N and prints every field as
 * "name value" lines. Built twice by `make check` (64-bit and -m32): the e2e tests run both
 * in the guest and require the same output, which exercises the compat ioctl path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/ipmb.h>

int main(int argc, char **argv)
{
	struct ipmb_info info;
	struct ipmb_stats st;
	int fd, i;

	if (argc != 2) {
		fprintf(stderr, "usage: %s /dev/ipmb-N\n", argv[0]);
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
	for (i = 0; i < 5; i++)
		printf("info_reserved%d %u\n", i, info.reserved[i]);
	printf("rx_frames %llu\nrx_bad_cs2 %llu\ntx_frames %llu\nrx_queued %llu\n",
	       (unsigned long long)st.rx_frames, (unsigned long long)st.rx_bad_cs2,
	       (unsigned long long)st.tx_frames, (unsigned long long)st.rx_queued);
	for (i = 0; i < 4; i++)
		printf("stats_reserved%d %llu\n", i, (unsigned long long)st.reserved[i]);
	/* A bad pointer is EFAULT, never a crash. */
	printf("bad_pointer_errno %d\n", ioctl(fd, IPMB_IOC_INFO, (void *)8) ? errno : 0);
	close(fd);
	return 0;
}
