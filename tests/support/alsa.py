"""ALSA ``file`` plugin PCMs: capture from and play into plain files (hwsim and kiosk tests)."""

ALSA_FILE_PCMS = """
pcm.filecap {
    @args [ INFILE ]
    @args.INFILE { type string default "/dev/zero" }
    type file
    slave.pcm "null"
    file "/dev/null"
    infile $INFILE
    format "raw"
}
pcm.filesink {
    @args [ OUTFILE FMT ]
    @args.OUTFILE { type string default "/dev/null" }
    @args.FMT { type string default "raw" }
    type file
    slave.pcm "null"
    file $OUTFILE
    format $FMT
}
"""
