// mix: a small program whose execution trace exercises every kind of heap allocation.
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/trace"
	"strconv"
)

type node struct {
	next *node
	val  [6]int
}

type big struct {
	ptrs [80]*node // pointerful, > 512 bytes: has a malloc header
}

var sink []any
var tinySink [][]byte

func work(rounds int) {
	var keep []*node
	for r := 0; r < rounds; r++ {
		for i := 0; i < 2000; i++ {
			n := &node{}
			if i%3 == 0 {
				keep = append(keep, n)
			}
			b := make([]byte, 5+i%9) // tiny noscan
			if i%50 == 0 {
				tinySink = append(tinySink, b)
			}
			s := strconv.Itoa(i) // tiny string
			_ = s
		}
		sink = append(sink, &big{}, make([]byte, 40000+r), make([]*node, 5000))
		m := map[int]string{}
		for i := 0; i < 100; i++ {
			m[i] = fmt.Sprint(i)
		}
		sink = append(sink, m)
		if len(keep) > 3000 {
			keep = keep[:0]
		}
		if r%4 == 3 {
			runtime.GC()
			sink = sink[:0]
		}
	}
	done := make(chan int)
	for g := 0; g < 4; g++ {
		go func(g int) { x := make([]int, 100*g+1); done <- len(x) }(g)
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

func main() {
	rounds := 8
	if len(os.Args) > 1 {
		rounds, _ = strconv.Atoi(os.Args[1])
	}
	f, err := os.Create(os.Getenv("GOTRACE_OUT"))
	if err != nil {
		panic(err)
	}
	if err := trace.Start(f); err != nil {
		panic(err)
	}
	work(rounds)
	trace.Stop()
	f.Close()
}
