module devcluster.local/pause

go 1.22
