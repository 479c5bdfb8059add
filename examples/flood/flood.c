/* flood: child spaces that each send the largest message there is to a
 * port nobody reads. Each space may have 16 MiB of messages queued, so
 * without a bound across spaces the monitor would hold 16 MiB for every
 * child, whatever --mem says. The bytes are charged to the memory quota of
 * the sender and its ancestors instead, so past the quota a send (or the
 * next child's memory) is refused with NV_EQUOTA.
 *
 *	flood N   N children, one after another: each maps a 16 MiB buffer,
 *	          sends it, and exits with the send's result as its status
 *
 * It prints "flood sent=S refused=R" (R: sends or child memory refused
 * with NV_EQUOTA) and exits with the number of other failures. */
#include "nestvm.h"

#define PAGE 4096ull
#define CODE_AT NV_USER_BASE
#define BUF_AT 0x1000000ull
#define BUF_SIZE NV_MAX_BUFFER

static int failures;

static int64_t ok_(const char *what, int64_t got)
{
	if (got < 0) {
		nv_printf("FAIL: %s: %s\n", what, nv_strerror(got));
		failures++;
	}
	return got;
}
#define OK(what, got) ok_(what, (int64_t)(got))

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* The child's program: port_send(1, 0, BUF_AT, BUF_SIZE, NV_NO_HANDLE),
 * then thread_exit(2, the send's result). Handle 1 is the port, 2 the
 * child's thread; the stack is the top of the buffer. */
static uint8_t code[] = {
	0xbf, 1, 0, 0, 0,		/* mov edi, 1 */
	0xbe, 0, 0, 0, 0,		/* mov esi, NV_OP_PORT_SEND */
	0x31, 0xd2,			/* xor edx, edx */
	0xb9, 0, 0, 0, 0,		/* mov ecx, BUF_AT */
	0x41, 0xb8, 0, 0, 0, 0,		/* mov r8d, BUF_SIZE */
	0x45, 0x31, 0xc9,		/* xor r9d, r9d */
	0xb8, 0, 0, 0, 0,		/* mov eax, NV_ABI_ENTRY */
	0xff, 0xd0,			/* call rax */
	0x48, 0x89, 0xc2,		/* mov rdx, rax */
	0xbf, 2, 0, 0, 0,		/* mov edi, 2 */
	0xbe, 0, 0, 0, 0,		/* mov esi, NV_OP_THREAD_EXIT */
	0xb8, 0, 0, 0, 0,		/* mov eax, NV_ABI_ENTRY */
	0xff, 0xd0,			/* call rax */
	0xeb, 0xfe,			/* jmp . */
};

static void make_code(void)
{
	put32(code + 6, NV_OP_PORT_SEND);
	put32(code + 13, BUF_AT);
	put32(code + 19, BUF_SIZE);
	put32(code + 27, NV_ABI_ENTRY);
	put32(code + 42, NV_OP_THREAD_EXIT);
	put32(code + 47, NV_ABI_ENTRY);
}

int main(int argc, char **argv)
{
	int valid = 0;
	uint64_t n = argc == 2 ? nv_atou64(argv[1], &valid) : 0;
	if (!valid)
		nv_panic("usage: flood N\n");
	make_code();
	nv_handle_t self = nv_self_space();
	int64_t sink = OK("port_create(sink)", nv_port_create(self));
	int64_t sink_call = OK("derive(sink)", nv_handle_derive(sink, NV_R_CALL | NV_R_GRANT, 0));
	int64_t ep = OK("port_create(exceptions)", nv_port_create(self));
	int64_t ep_call = OK("derive(exceptions)", nv_handle_derive(ep, NV_R_CALL, 0));
	uint64_t sent = 0, refused = 0;
	for (uint64_t i = 0; i < n && !failures; i++) {
		/* Room for the code, the buffer and the message: what a space
		 * has queued counts against its own quota too. */
		int64_t child = OK("space_create", nv_space_create(self, (2 * BUF_SIZE + PAGE) / PAGE, 1, 4, 0));
		int64_t text = OK("region_create(code)", nv_region_create(child, PAGE));
		OK("region_write(code)", nv_region_write(text, 0, NV_ADDR(code), sizeof code));
		OK("space_map(code)", nv_space_map(child, text, CODE_AT, 0, PAGE, NV_PERM_READ | NV_PERM_EXEC));
		int64_t buf = nv_region_create(child, BUF_SIZE);
		if (buf == -NV_EQUOTA) {
			/* The queued messages hold what the child would map. */
			refused++;
			nv_space_kill(child, 0);
			nv_handle_close(text);
			nv_handle_close(child);
			continue;
		}
		OK("region_create(buffer)", buf);
		OK("space_map(buffer)", nv_space_map(child, buf, BUF_AT, 0, BUF_SIZE, NV_PERM_READ | NV_PERM_WRITE));
		if (OK("insert the port", nv_space_insert(child, sink_call, NV_R_CALL)) != 1)
			nv_printf("FAIL: the port is not handle 1\n"), failures++;
		int64_t th = OK("thread_create", nv_thread_create(child, CODE_AT, BUF_AT + BUF_SIZE, 0));
		if (OK("insert the thread", nv_space_insert(child, th, NV_R_CONTROL)) != 2)
			nv_printf("FAIL: the thread is not handle 2\n"), failures++;
		OK("space_set_exception_port", nv_space_set_exception_port(child, ep_call));
		OK("thread_start", nv_thread_start(th));
		struct nv_msg m;
		do
			OK("port_receive(exceptions)", nv_port_receive(ep, NV_ADDR(&m), sizeof m, 0, 0));
		while (!failures && m.kind != NV_MSG_EXIT);
		/* The exit status is the send's result, low 8 bits. */
		int8_t status = (int8_t)m.words[1];
		if (m.words[0] != NV_SPACE_EXITED)
			nv_printf("FAIL: child %llu did not exit: state %llu\n", (unsigned long long)i, (unsigned long long)m.words[0]), failures++;
		else if (status == 0)
			sent++;
		else if (status == -NV_EQUOTA)
			refused++;
		else
			nv_printf("FAIL: child %llu: send: %s\n", (unsigned long long)i, nv_strerror(status)), failures++;
		nv_handle_close(th);
		nv_handle_close(buf);
		nv_handle_close(text);
		nv_handle_close(child);
	}
	nv_printf("flood sent=%llu refused=%llu\n", (unsigned long long)sent, (unsigned long long)refused);
	return failures;
}
