module gothreads

go 1.22
