/*
 * golden_glue.c: the per-case part of the golden driver.
 *
 * tests/unit/test_golden.c compiles tests/golden_driver.c once per run
 * (with -DGOLDEN_GLUE) and, per case, only this file against the case's
 * generated header:
 *
 *   cc -DMODEL_DESC=<case>_model -DMODEL_HEADER='"out.h"'
 *      -DMODEL_WORKSPACE_MACRO=<CASE>_WORKSPACE_SIZE
 *      -DMODEL_WORKSPACE_THREADS_MACRO=<CASE>_WORKSPACE_SIZE_THREADS
 *      -c golden_glue.c
 *
 * It proves the header compiles on its own (-Wall -Werror) and hands the
 * driver the descriptor and the header's workspace macros as data, which
 * the driver compares with the descriptor.
 */
#include "cnnrt.h"
#include MODEL_HEADER /* first after cnnrt.h: the header must compile on its own */

extern const cnnrt_model MODEL_DESC;
extern const cnnrt_model *const golden_model;
extern const long long golden_header_ws[10];

const cnnrt_model *const golden_model = &MODEL_DESC;

_Static_assert(MODEL_WORKSPACE_THREADS_MACRO(1) == MODEL_WORKSPACE_MACRO,
               "WORKSPACE_SIZE_THREADS(1) is WORKSPACE_SIZE");
/* [0]: WORKSPACE_SIZE; [n]: WORKSPACE_SIZE_THREADS(n), n = 1..9 */
#define W(n) (long long)MODEL_WORKSPACE_THREADS_MACRO(n)
const long long golden_header_ws[10] = {
    (long long)MODEL_WORKSPACE_MACRO, W(1), W(2), W(3), W(4), W(5), W(6), W(7), W(8), W(9)};
