/*
 * bridge_none.c - `shmlink bridge` in a build without the NATS C client (bridge.h): it says
 * so, and how to get one. The build picks this file or bridge_nats.c.
 */
#include "bridge.h"

#include "verb.h"

int cli_bridge_run(const struct bridge_args *a)
{
    return cli_fail(a->verb, a->addr,
                    "this shmlink was built without the NATS C client (libnats), so it "
                    "cannot bridge; on Debian, install libnats-dev and libssl-dev and build "
                    "it again");
}
