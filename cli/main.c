/* main.c - the occystrap executable: a thin shell over the engine library
 * (as curl's src/ is over lib/). All behaviour lives in cli.c. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return oc_cli_main(argc, argv);
}
