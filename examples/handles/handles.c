/* handles N: prints 1..N, one line each with some compute between, through
 * a console handle three derivations deep, then takes its handles apart and
 * prints what that did. Its state is in its handle tables on purpose, so
 * that a checkpoint restored in the middle reproduces the end only when it
 * brought back the derivation tree and the port set as they were:
 *
 *   console -> a -> b -> c (the one it prints through)
 *                |    `-> a copy in a child space's table
 *                `-> d
 *
 * and a port set holding two ports, one with a message queued on it. At the
 * end it revokes a (which must remove b, c, d and the child's copy: 4),
 * checks that c no longer works, and receives the queued message through
 * the set. */
#include "nestvm.h"

static uint64_t work(uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 20000000; i++)
		x = x * 6364136223846793005ull + 1442695040888963407ull;
	return x >> 40;
}

static nv_handle_t must(const char *what, int64_t r)
{
	if (r < 0) {
		nv_fprintf(nv_stderr(), "handles: %s: %s\n", what, nv_strerror(r));
		nv_exit(125);
	}
	return (nv_handle_t)r;
}

int main(int argc, char **argv)
{
	int ok = 0;
	uint64_t n = argc > 1 ? nv_atou64(argv[1], &ok) : 0;
	if (!ok || n == 0 || n > 1000000) {
		nv_fprintf(nv_stderr(), "usage: handles N (1..1000000)\n");
		return 2;
	}
	const uint64_t pass = NV_R_WRITE | NV_R_DERIVE | NV_R_GRANT;
	nv_handle_t a = must("derive a", nv_handle_derive(nv_console(), pass, 0));
	nv_handle_t b = must("derive b", nv_handle_derive(a, pass, 0));
	nv_handle_t c = must("derive c", nv_handle_derive(b, NV_R_WRITE, 0));
	must("derive d", nv_handle_derive(a, NV_R_WRITE, 0));
	nv_handle_t child = must("space_create", nv_space_create(nv_self_space(), 1, 1, 8, 0));
	must("space_insert", nv_space_insert(child, b, NV_R_WRITE));

	nv_handle_t set = must("port_set_create", nv_port_set_create(nv_self_space()));
	nv_handle_t p1 = must("port_create", nv_port_create(nv_self_space()));
	nv_handle_t p2 = must("port_create", nv_port_create(nv_self_space()));
	must("port_set_add", nv_port_set_add(set, p1));
	must("port_set_add", nv_port_set_add(set, p2));
	static const char note[] = "queued";
	must("port_send", nv_port_send(p2, 42, NV_ADDR(note), sizeof note - 1, NV_NO_HANDLE));

	uint64_t total = 0;
	for (uint64_t i = 1; i <= n; i++) {
		total += work(i);
		nv_fprintf(c, "%llu\n", (unsigned long long)i);
	}
	nv_printf("total %llu\n", (unsigned long long)total);
	nv_printf("revoked %lld\n", (long long)nv_handle_revoke(a));
	int64_t info = nv_handle_info(c);
	nv_printf("deep handle: %s\n", info < 0 ? nv_strerror(info) : "still works");

	struct nv_msg m;
	char data[16] = {0};
	int64_t got = nv_port_receive(set, NV_ADDR(&m), sizeof m, NV_ADDR(data), sizeof data - 1);
	if (got < 0) {
		nv_printf("set: %s\n", nv_strerror(got));
		return 1;
	}
	nv_printf("set: tag %llu, \"%s\"\n", (unsigned long long)m.op, data);
	return 0;
}
