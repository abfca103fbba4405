/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Map names and default sizes. Names carry the layout version and stay within the kernel's 15
 * characters; the loader pins each under the node's bpffs directory by this name and sizes it at
 * load time (these are the defaults). */
#ifndef BPFPROXY_MAPS_H
#define BPFPROXY_MAPS_H

#include "bpfproxy/drop_reason.h"
#include "bpfproxy/frag.h"

#define SVC4_MAP       svc4_v1
#define BACKEND_MAP    be_v1
#define CT4_MAP        ct4_v4 /* v2: ct4_value.be_gen; v3: ct4_value.state; v4: a hash, not an LRU hash (v1-v3 are migrated by the loader) */
#define AFF4_MAP       aff4_v1
#define SRCR4_MAP      srcr4_v1
#define NODEADDR4_MAP  nodeaddr4_v1
#define CLCIDR4_MAP    clustercidr4_v1
#define MAGLEV_MAP     maglev_v1
#define DROPS_MAP      drops_v1
#define SVCSTAT_MAP    svcstat_v1
#define FRAG4_MAP      frag4_v1
#define FRAGSTAT_MAP   fragstat_v1
#define BEGEN_MAP      begen_v1

#define SVC4_MAP_SIZE      65536
#define BACKEND_MAP_SIZE   65536
#define CT4_MAP_SIZE       262144
#define AFF4_MAP_SIZE      65536
#define SRCR4_MAP_SIZE     4096
#define NODEADDR4_MAP_SIZE 64
#define CLCIDR4_MAP_SIZE   64
#define MAGLEV_MAP_SIZE    4096
#define SVCSTAT_MAP_SIZE   65536 /* svc_id < this */
#define DROPS_MAP_SIZE     64    /* room for new reasons without a new map */
#define FRAG4_MAP_SIZE     8192  /* datagrams in flight in fragments (LRU) */
#define FRAGSTAT_MAP_SIZE  8     /* room for new counters without a new map */
#define BEGEN_MAP_SIZE     1     /* one generation for every backend */

_Static_assert(DROP_REASON_MAX <= DROPS_MAP_SIZE, "drops_v1 is too small for enum drop_reason");
_Static_assert(FRAG_STAT_MAX <= FRAGSTAT_MAP_SIZE, "fragstat_v1 is too small for enum frag_stat");

#endif
