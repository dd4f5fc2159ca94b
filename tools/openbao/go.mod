module local.test/baobin

go 1.25.8
