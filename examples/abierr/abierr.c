/* abierr: passes garbage to the ABI and checks that every call fails with
 * the right error code, and that the monitor stays up to answer. Prints
 * PASS and exits 0 when every check holds. */
#include "nestvm.h"

static int failures;

static void check(const char *what, int64_t got, int64_t want)
{
	if (got != want) {
		nv_printf("FAIL: %s: got %lld want %lld\n", what, (long long)got, (long long)want);
		failures++;
	}
}

static const char ro_message[] = "read-only data is fine to write from\n";

int main(void)
{
	nv_handle_t con = nv_console(), clk = nv_clock();
	char buf[16] = "stack bytes";

	/* Handles that name nothing. */
	check("write on handle 0", nv_console_write(0, NV_ADDR(buf), 1), -NV_EBADHANDLE);
	check("write on handle 9999", nv_console_write(9999, NV_ADDR(buf), 1), -NV_EBADHANDLE);
	check("write on handle 2^63", nv_console_write(1ull << 63, NV_ADDR(buf), 1), -NV_EBADHANDLE);

	/* Operations that do not exist. */
	check("op 0", nv_invoke(con, 0, 0, 0, 0, 0, 0, 0).r0, -NV_EINVALOP);
	check("op NV_OP_COUNT", nv_invoke(con, NV_OP_COUNT, 0, 0, 0, 0, 0, 0).r0, -NV_EINVALOP);
	check("op 0xffffffff", nv_invoke(con, 0xffffffffull, 0, 0, 0, 0, 0, 0).r0, -NV_EINVALOP);
	check("op 2^32 + console_write", nv_invoke(con, (1ull << 32) + NV_OP_CONSOLE_WRITE, NV_ADDR(buf), 1, 0, 0, 0, 0).r0, -NV_EINVALOP);

	/* Buffers the caller may not read. */
	check("write from address 0", nv_console_write(con, 0, 5), -NV_EFAULT);
	check("write from the ABI page", nv_console_write(con, NV_ABI_PAGE, 5), -NV_EFAULT);
	check("write from the page tables", nv_console_write(con, NV_RESERVED_TOP - 8, 8), -NV_EFAULT);
	check("write from unmapped memory", nv_console_write(con, 0x7f0000000ull, 5), -NV_EFAULT);
	check("write crossing the user top", nv_console_write(con, NV_USER_TOP - 1, 2), -NV_EFAULT);
	check("write with a wrapping length", nv_console_write(con, NV_ADDR(buf), ~0ull), -NV_ETOOBIG);
	check("write longer than NV_MAX_BUFFER", nv_console_write(con, NV_ADDR(buf), NV_MAX_BUFFER + 1), -NV_ETOOBIG);
	check("empty write", nv_console_write(con, NV_ADDR(buf), 0), 0);
	check("empty write at address 0", nv_console_write(con, 0, 0), 0);

	/* Arguments out of range. */
	check("clock_read(7)", nv_clock_read(clk, 7), -NV_EINVAL);

	/* Rights and types. */
	check("thread_exit on the console", nv_thread_exit(con, 0), -NV_ERIGHTS);
	check("thread_exit on the space", nv_thread_exit(nv_self_space(), 0), -NV_EWRONGTYPE);
	check("console_write on the clock", nv_console_write(clk, NV_ADDR(buf), 1), -NV_ERIGHTS);
	nv_result_t info = nv_handle_info_r(con);
	check("handle_info(console) type", info.r0, NV_OBJ_PORT);
	check("console has write", (int64_t)(info.r1 & NV_R_WRITE), NV_R_WRITE);
	check("console lacks read", (int64_t)(info.r1 & NV_R_READ), 0);
	info = nv_handle_info_r(nv_self_thread());
	check("handle_info(self thread) type", info.r0, NV_OBJ_THREAD);
	check("handle_info(self thread) rights", (int64_t)info.r1, NV_R_ALL);
	/* Under a layer the space and its regions may be stand-ins (a
	 * pager's, a checkpoint's): they still read as what they stand for. */
	check("handle_info(self space) type", nv_handle_info_r(nv_self_space()).r0, NV_OBJ_SPACE);
	int64_t rg = nv_region_create(nv_self_space(), 4096);
	check("region_create", rg > 0, 1);
	check("handle_info(new region) type", nv_handle_info_r((nv_handle_t)rg).r0, NV_OBJ_REGION);
	check("close the region", nv_handle_close((nv_handle_t)rg), 0);

	/* Writing from read-only data is allowed: the call only reads it. */
	check("write from rodata", nv_console_write(con, NV_ADDR(ro_message), sizeof ro_message - 1), sizeof ro_message - 1);

	/* A closed handle is gone. */
	check("close the clock", nv_handle_close(clk), 0);
	check("read the closed clock", nv_clock_read(clk, NV_CLOCK_MONOTONIC), -NV_EBADHANDLE);
	check("close it again", nv_handle_close(clk), -NV_EBADHANDLE);

	if (failures) {
		nv_printf("%d checks failed\n", failures);
		return 1;
	}
	nv_puts("PASS");
	return 0;
}
