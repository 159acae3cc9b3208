#include "textflag.h"

// func storeRelease32(p *uint32, v uint32)
// A plain MOV is a release store under x86-TSO: the earlier stores (the
// ring entries) become visible first. No XCHG: see doc.go.
TEXT ·storeRelease32(SB), NOSPLIT, $0-12
	MOVQ p+0(FP), AX
	MOVL v+8(FP), BX
	MOVL BX, (AX)
	RET
