/* cli.h - command-line entry point: global options, command dispatch and
 * exit status (0 done, 1 some entries failed, 2 usage or configuration). */
#ifndef OC_CLI_CLI_H
#define OC_CLI_CLI_H

int oc_cli_main(int argc, char **argv);

#endif
