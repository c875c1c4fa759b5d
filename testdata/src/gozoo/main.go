// The smallest static Go program, cross-compiled for every GOARCH by the elf-zoo fixtures.
package main

import "os"

func main() {
	os.Stdout.WriteString("hello from the zoo\n")
}
