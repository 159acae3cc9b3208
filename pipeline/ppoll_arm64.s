#include "textflag.h"

// func ppoll(fds *unix.PollFd, nfds uintptr, ts *unix.Timespec) (errno uintptr)
// ppoll(2) with no signal mask.
TEXT ·ppoll(SB), NOSPLIT, $0-32
	MOVD	fds+0(FP), R0
	MOVD	nfds+8(FP), R1
	MOVD	ts+16(FP), R2
	MOVD	$0, R3
	MOVD	$0, R4
	MOVD	$73, R8 // SYS_ppoll
	SVC
	CMN	$4095, R0
	BCC	ok
	NEG	R0, R0
	MOVD	R0, errno+24(FP)
	RET
ok:
	MOVD	ZR, errno+24(FP)
	RET
