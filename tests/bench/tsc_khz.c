// SPDX-License-Identifier: GPL-2.0
/*
 * Prints the host's TSC rate in kHz: rdtsc against CLOCK_MONOTONIC_RAW over about a second.
 *
 * tests/qemu/run.py --mode bench passes it to the guest as tsc_early_khz= (with tsc=reliable):
 * under TCG without ACPI the guest cannot calibrate its TSC, which runs at the host's rate, and
 * would stay on the jiffies clocksource (4 ms). Ratios within one boot do not depend on the
 * exactness of this figure.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(void)
{
	uint64_t t0 = now_ns(), c0 = __rdtsc(), t1, c1;
	struct timespec second = { .tv_sec = 1 };

	nanosleep(&second, NULL);
	t1 = now_ns();
	c1 = __rdtsc();
	/* cycles per ns * 1e6 = kHz */
	printf("%llu\n", (unsigned long long)((c1 - c0) * 1000000u / (t1 - t0)));
	return 0;
}
