/* The entry point of every guest. The monitor starts the first thread with
 * rdi = the address of struct nv_start_info and rsp at argc, as Linux lays
 * out a new process's stack (argc, argv..., NULL, envp NULL, auxv). */
	.section .text.start, "ax"
	.globl _start
	.type _start, @function
_start:
	xor %ebp, %ebp		/* the outermost frame, for debuggers */
	and $-16, %rsp		/* the call below needs a 16-byte aligned stack */
	call nv__start
	ud2			/* nv__start never returns */
	.size _start, . - _start
	.section .note.GNU-stack, "", @progbits
