/* fanout N [hold]: a wide tree of live spaces. It creates N child spaces,
 * each with one thread blocked in port_receive on a port nobody sends to,
 * and prints "fanout N created in NS ns"; checks with space_status that
 * every child is still running; with hold, reads its standard input to its
 * end (so whoever runs it can look at the monitor while all N live); then
 * kills them all (space_kill returns once a child's subtree is gone) and
 * prints "fanout N torn down in NS ns".
 *
 * A call that fails, NV_EQUOTA past the children quota included, is
 * printed on stderr as "fanout: child I: OPERATION: ERROR" and ends the
 * program with status 1 (its children end with it). */
#include "nestvm.h"

#define PAGE NV_PAGE_SIZE
#define MAX_CHILDREN 4096

/* Where the child's one page lies: its code at the start, the handle of
 * its port at CHILD_HANDLE_OFF, the nv_msg it receives into at
 * CHILD_MSG_OFF, its stack below the page's end (with room above it for
 * the entry's stack arguments). */
#define CHILD_AT NV_USER_BASE
#define CHILD_HANDLE_OFF 40
#define CHILD_MSG_OFF 0x800
#define CHILD_STACK_OFF (PAGE - 64)

/* The child's code: port_receive(port, msg, sizeof msg, 0, 0) through the
 * ABI entry; nothing ever arrives, so it never returns (ud2 if it did). */
static const uint8_t child_code[CHILD_HANDLE_OFF] = {
	0x48, 0x8b, 0x3d, CHILD_HANDLE_OFF - 7, 0, 0, 0,	   /* mov rdi, [rip+33]: the port */
	0xbe, NV_OP_PORT_RECEIVE, 0, 0, 0,			   /* mov esi, NV_OP_PORT_RECEIVE */
	0xba, CHILD_MSG_OFF & 0xff, (CHILD_MSG_OFF >> 8) & 0xff, /* mov edx, CHILD_AT + CHILD_MSG_OFF */
	(CHILD_AT >> 16) & 0xff, (CHILD_AT >> 24) & 0xff,
	0xb9, sizeof(struct nv_msg), 0, 0, 0, /* mov ecx, sizeof (struct nv_msg) */
	0x45, 0x31, 0xc0,		      /* xor r8d, r8d: no data */
	0x45, 0x31, 0xc9,		      /* xor r9d, r9d */
	0xb8, 0x00, 0x00, 0x10, 0x00,	      /* mov eax, NV_ABI_ENTRY */
	0xff, 0xd0,			      /* call rax */
	0x0f, 0x0b,			      /* ud2: port_receive returned */
	0x90, 0x90, 0x90,		      /* nop, up to the handle */
};
_Static_assert(NV_ABI_ENTRY == 0x100000, "child_code calls NV_ABI_ENTRY");
_Static_assert((CHILD_AT & 0xff) == 0, "child_code's msg address");
_Static_assert(sizeof(struct nv_msg) < 0x100, "child_code's msg size is one byte");

static uint64_t child_no;

/* check returns r when it is a value, and otherwise ends the program. */
static int64_t check(int64_t r, const char *what)
{
	if (r < 0) {
		nv_fprintf(nv_stderr(), "fanout: child %llu: %s: %s\n", (unsigned long long)child_no, what,
			   nv_strerror(r));
		nv_exit(1);
	}
	return r;
}

static nv_handle_t children[MAX_CHILDREN];

/* spawn creates a child whose one thread waits on port, and starts it. */
static nv_handle_t spawn(nv_handle_t port)
{
	nv_handle_t self = nv_self_space();
	nv_handle_t child = (nv_handle_t)check(nv_space_create(self, 0, 0, 0, 0), "space_create");
	nv_handle_t region = (nv_handle_t)check(nv_region_create(child, PAGE), "region_create");
	check(nv_space_map(child, region, CHILD_AT, 0, PAGE, NV_PERM_READ | NV_PERM_WRITE | NV_PERM_EXEC), "space_map");
	uint8_t image[CHILD_HANDLE_OFF + 8];
	memcpy(image, child_code, CHILD_HANDLE_OFF);
	uint64_t h = (uint64_t)check(nv_space_insert(child, port, NV_R_RECEIVE), "space_insert");
	memcpy(image + CHILD_HANDLE_OFF, &h, 8);
	check(nv_region_write(region, 0, NV_ADDR(image), sizeof image), "region_write");
	nv_handle_t thread = (nv_handle_t)check(nv_thread_create(child, CHILD_AT, CHILD_AT + CHILD_STACK_OFF, 0),
						"thread_create");
	check(nv_thread_start(thread), "thread_start");
	/* The child's space holds what it runs on: these handles only cost
	 * this space's quota. */
	check(nv_handle_close(thread), "handle_close (thread)");
	check(nv_handle_close(region), "handle_close (region)");
	return child;
}

int main(int argc, char **argv)
{
	if (argc != 2 && !(argc == 3 && strcmp(argv[2], "hold") == 0))
		nv_panic("usage: fanout N [hold]");
	int ok;
	uint64_t n = nv_atou64(argv[1], &ok);
	if (!ok || n == 0 || n > MAX_CHILDREN)
		nv_panic("fanout: %s is not a number of children from 1 to %d", argv[1], MAX_CHILDREN);
	nv_handle_t port = (nv_handle_t)check(nv_port_create(nv_self_space()), "port_create");

	uint64_t start = nv_now_ns();
	for (child_no = 0; child_no < n; child_no++)
		children[child_no] = spawn(port);
	uint64_t created = nv_now_ns() - start;
	nv_printf("fanout %llu created in %llu ns\n", (unsigned long long)n, (unsigned long long)created);

	for (child_no = 0; child_no < n; child_no++) {
		int64_t st = check(nv_space_status(children[child_no]), "space_status");
		if (st != (int64_t)NV_SPACE_RUNNING) {
			nv_fprintf(nv_stderr(), "fanout: child %llu: space_status %lld, want running\n",
				   (unsigned long long)child_no, (long long)st);
			nv_exit(1);
		}
	}

	if (argc == 3) {
		nv_handle_t in = nv_stdin();
		if (in == NV_NO_HANDLE)
			nv_panic("fanout: hold needs a standard input");
		char buf[64];
		int64_t got;
		while ((got = nv_console_read(in, NV_ADDR(buf), sizeof buf)) > 0)
			;
		check(got, "console_read (stdin)");
	}

	start = nv_now_ns();
	for (child_no = 0; child_no < n; child_no++) {
		check(nv_space_kill(children[child_no], 0), "space_kill");
		check(nv_handle_close(children[child_no]), "handle_close (space)");
	}
	uint64_t torn = nv_now_ns() - start;
	nv_printf("fanout %llu torn down in %llu ns\n", (unsigned long long)n, (unsigned long long)torn);
	return 0;
}
