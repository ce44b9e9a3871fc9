{
  "patcher": {
    "fileversion": 1,
    "appversion": {
      "major": 8,
      "minor": 5,
      "revision": 0,
      "architecture": "x64",
      "modernui": 1
    },
    "classnamespace": "box",
    "rect": [
      40.0,
      60.0,
      1340.0,
      1420.0
    ],
    "bglocked": 0,
    "openinpresentation": 0,
    "default_fontsize": 12.0,
    "default_fontface": 0,
    "default_fontname": "Arial",
    "gridonopen": 1,
    "gridsize": [
      15.0,
      15.0
    ],
    "gridsnaponopen": 1,
    "objectsnaponopen": 1,
    "statusbarvisible": 2,
    "toolbarvisible": 1,
    "boxanimatetime": 200,
    "enablehscroll": 1,
    "enablevscroll": 1,
    "description": "Receives mer-live's OSC (emotions, mid-level features, explanations, status)",
    "digest": "mer-live receiver",
    "tags": "mer-live osc emotion",
    "style": "",
    "boxes": [
      {
        "box": {
          "id": "obj-1",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            10.0,
            760.0,
            36.0
          ],
          "text": "mer-live receiver for Max/MSP. Start the daemon with  mer-live --osc 127.0.0.1:9000  (or --config maxmsp). All values are 0-1 floats; the order of the lists is documented in docs/guide/osc.md."
        }
      },
      {
        "box": {
          "id": "obj-2",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            50.0,
            760.0,
            36.0
          ],
          "text": "[udpreceive] turns each OSC message (bundles are unpacked) into a Max message whose selector is the full address, so plain [route] objects with full addresses pick them out. Another --osc-prefix needs the route arguments changed."
        }
      },
      {
        "box": {
          "id": "obj-3",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            95.0,
            117.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "udpreceive 9000"
        }
      },
      {
        "box": {
          "id": "obj-4",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 7,
          "patching_rect": [
            20.0,
            130.0,
            621.0,
            22.0
          ],
          "outlettype": [
            "",
            "",
            "",
            "",
            "",
            "",
            ""
          ],
          "text": "route /mer/status /mer/emotion /mer/mid /mer/explain/bias /mer/raw/emotion /mer/raw/mid"
        }
      },
      {
        "box": {
          "id": "obj-5",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 9,
          "patching_rect": [
            20.0,
            440.0,
            1132.0,
            22.0
          ],
          "outlettype": [
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            ""
          ],
          "text": "route /mer/emotion/valence /mer/emotion/energy /mer/emotion/tension /mer/emotion/anger /mer/emotion/fear /mer/emotion/happy /mer/emotion/sad /mer/emotion/tender"
        }
      },
      {
        "box": {
          "id": "obj-6",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 8,
          "patching_rect": [
            20.0,
            720.0,
            1181.0,
            22.0
          ],
          "outlettype": [
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            ""
          ],
          "text": "route /mer/mid/melodiousness /mer/mid/articulation /mer/mid/rhythm_complexity /mer/mid/rhythm_stability /mer/mid/dissonance /mer/mid/tonal_stability /mer/mid/minorness"
        }
      },
      {
        "box": {
          "id": "obj-7",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 9,
          "patching_rect": [
            20.0,
            990.0,
            1132.0,
            22.0
          ],
          "outlettype": [
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            ""
          ],
          "text": "route /mer/explain/valence /mer/explain/energy /mer/explain/tension /mer/explain/anger /mer/explain/fear /mer/explain/happy /mer/explain/sad /mer/explain/tender"
        }
      },
      {
        "box": {
          "id": "obj-8",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            160.0,
            460.0,
            20.0
          ],
          "text": "each [route] passes what it does not know to the next one (rightmost outlet)"
        }
      },
      {
        "box": {
          "id": "obj-9",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            195.0,
            420.0,
            20.0
          ],
          "text": "STATUS: state, input level (dBFS), overflow count, update count"
        }
      },
      {
        "box": {
          "id": "obj-10",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 4,
          "patching_rect": [
            20.0,
            220.0,
            117.0,
            22.0
          ],
          "outlettype": [
            "",
            "",
            "",
            ""
          ],
          "text": "unpack s 0. 0 0"
        }
      },
      {
        "box": {
          "id": "obj-11",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            250.0,
            89.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "prepend set"
        }
      },
      {
        "box": {
          "id": "obj-12",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            280.0,
            90.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": ""
        }
      },
      {
        "box": {
          "id": "obj-13",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            130.0,
            280.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-14",
          "maxclass": "number",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            210.0,
            280.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-15",
          "maxclass": "number",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            290.0,
            280.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-16",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            305.0,
            360.0,
            20.0
          ],
          "text": "state                 dBFS        overflows  updates"
        }
      },
      {
        "box": {
          "id": "obj-17",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            420.0,
            195.0,
            420.0,
            20.0
          ],
          "text": "/mer/emotion (8, valence energy tension anger fear happy sad tender)"
        }
      },
      {
        "box": {
          "id": "obj-18",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            420.0,
            220.0,
            240.0,
            80.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 8,
          "setminmax": [
            0.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-19",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            680.0,
            195.0,
            260.0,
            20.0
          ],
          "text": "/mer/mid (7, MID_LEVELS order)"
        }
      },
      {
        "box": {
          "id": "obj-20",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            680.0,
            220.0,
            210.0,
            80.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            0.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-21",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            420.0,
            310.0,
            220.0,
            20.0
          ],
          "text": "/mer/raw/emotion (unsmoothed)"
        }
      },
      {
        "box": {
          "id": "obj-22",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            420.0,
            330.0,
            240.0,
            60.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 8,
          "setminmax": [
            0.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-23",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            680.0,
            310.0,
            220.0,
            20.0
          ],
          "text": "/mer/raw/mid (unsmoothed)"
        }
      },
      {
        "box": {
          "id": "obj-24",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            680.0,
            330.0,
            210.0,
            60.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            0.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-25",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            470.0,
            460.0,
            20.0
          ],
          "text": "EMOTIONS, one address each (0 = rating 1, 1 = rating 9)"
        }
      },
      {
        "box": {
          "id": "obj-26",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            495.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-27",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            493.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-28",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            493.0,
            103.0,
            22.0
          ],
          "outlettype": [],
          "text": "s mer-valence"
        }
      },
      {
        "box": {
          "id": "obj-29",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            340.0,
            493.0,
            120.0,
            20.0
          ],
          "text": "valence"
        }
      },
      {
        "box": {
          "id": "obj-30",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            522.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-31",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            520.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-32",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            520.0,
            96.0,
            22.0
          ],
          "outlettype": [],
          "text": "s mer-energy"
        }
      },
      {
        "box": {
          "id": "obj-33",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            340.0,
            520.0,
            120.0,
            20.0
          ],
          "text": "energy"
        }
      },
      {
        "box": {
          "id": "obj-34",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            549.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-35",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            547.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-36",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            547.0,
            103.0,
            22.0
          ],
          "outlettype": [],
          "text": "s mer-tension"
        }
      },
      {
        "box": {
          "id": "obj-37",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            340.0,
            547.0,
            120.0,
            20.0
          ],
          "text": "tension"
        }
      },
      {
        "box": {
          "id": "obj-38",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            576.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-39",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            574.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-40",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            574.0,
            89.0,
            22.0
          ],
          "outlettype": [],
          "text": "s mer-anger"
        }
      },
      {
        "box": {
          "id": "obj-41",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            340.0,
            574.0,
            120.0,
            20.0
          ],
          "text": "anger"
        }
      },
      {
        "box": {
          "id": "obj-42",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            603.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-43",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            601.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-44",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            601.0,
            82.0,
            22.0
          ],
          "outlettype": [],
          "text": "s mer-fear"
        }
      },
      {
        "box": {
          "id": "obj-45",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            340.0,
            601.0,
            120.0,
            20.0
          ],
          "text": "fear"
        }
      },
      {
        "box": {
          "id": "obj-46",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            630.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-47",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            628.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-48",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            628.0,
            89.0,
            22.0
          ],
          "outlettype": [],
          "text": "s mer-happy"
        }
      },
      {
        "box": {
          "id": "obj-49",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            340.0,
            628.0,
            120.0,
            20.0
          ],
          "text": "happy"
        }
      },
      {
        "box": {
          "id": "obj-50",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            657.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-51",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            655.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-52",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            655.0,
            75.0,
            22.0
          ],
          "outlettype": [],
          "text": "s mer-sad"
        }
      },
      {
        "box": {
          "id": "obj-53",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            340.0,
            655.0,
            120.0,
            20.0
          ],
          "text": "sad"
        }
      },
      {
        "box": {
          "id": "obj-54",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            684.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-55",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            682.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-56",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            682.0,
            96.0,
            22.0
          ],
          "outlettype": [],
          "text": "s mer-tender"
        }
      },
      {
        "box": {
          "id": "obj-57",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            340.0,
            682.0,
            120.0,
            20.0
          ],
          "text": "tender"
        }
      },
      {
        "box": {
          "id": "obj-58",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            750.0,
            460.0,
            20.0
          ],
          "text": "MID-LEVEL FEATURES, one address each (0-1)"
        }
      },
      {
        "box": {
          "id": "obj-59",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            775.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-60",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            773.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-61",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            773.0,
            160.0,
            20.0
          ],
          "text": "melodiousness"
        }
      },
      {
        "box": {
          "id": "obj-62",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            802.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-63",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            800.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-64",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            800.0,
            160.0,
            20.0
          ],
          "text": "articulation"
        }
      },
      {
        "box": {
          "id": "obj-65",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            829.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-66",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            827.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-67",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            827.0,
            160.0,
            20.0
          ],
          "text": "rhythm_complexity"
        }
      },
      {
        "box": {
          "id": "obj-68",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            856.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-69",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            854.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-70",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            854.0,
            160.0,
            20.0
          ],
          "text": "rhythm_stability"
        }
      },
      {
        "box": {
          "id": "obj-71",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            883.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-72",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            881.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-73",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            881.0,
            160.0,
            20.0
          ],
          "text": "dissonance"
        }
      },
      {
        "box": {
          "id": "obj-74",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            910.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-75",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            908.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-76",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            908.0,
            160.0,
            20.0
          ],
          "text": "tonal_stability"
        }
      },
      {
        "box": {
          "id": "obj-77",
          "maxclass": "slider",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            20.0,
            937.0,
            160.0,
            18.0
          ],
          "outlettype": [
            ""
          ],
          "floatoutput": 1,
          "size": 1.0,
          "min": 0.0,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-78",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            190.0,
            935.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-79",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            260.0,
            935.0,
            160.0,
            20.0
          ],
          "text": "minorness"
        }
      },
      {
        "box": {
          "id": "obj-80",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            1020.0,
            900.0,
            36.0
          ],
          "text": "EXPLANATIONS: /mer/explain/<emotion> = the 7 mid-level contributions (MID_LEVELS order); bias + their sum = the emotion value. Bars above the middle push the emotion up."
        }
      },
      {
        "box": {
          "id": "obj-81",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            1065.0,
            200.0,
            20.0
          ],
          "text": "valence"
        }
      },
      {
        "box": {
          "id": "obj-82",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            20.0,
            1085.0,
            200.0,
            70.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            -1.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-83",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            250.0,
            1065.0,
            200.0,
            20.0
          ],
          "text": "energy"
        }
      },
      {
        "box": {
          "id": "obj-84",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            250.0,
            1085.0,
            200.0,
            70.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            -1.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-85",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            480.0,
            1065.0,
            200.0,
            20.0
          ],
          "text": "tension"
        }
      },
      {
        "box": {
          "id": "obj-86",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            480.0,
            1085.0,
            200.0,
            70.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            -1.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-87",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            710.0,
            1065.0,
            200.0,
            20.0
          ],
          "text": "anger"
        }
      },
      {
        "box": {
          "id": "obj-88",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            710.0,
            1085.0,
            200.0,
            70.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            -1.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-89",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            1175.0,
            200.0,
            20.0
          ],
          "text": "fear"
        }
      },
      {
        "box": {
          "id": "obj-90",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            20.0,
            1195.0,
            200.0,
            70.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            -1.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-91",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            250.0,
            1175.0,
            200.0,
            20.0
          ],
          "text": "happy"
        }
      },
      {
        "box": {
          "id": "obj-92",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            250.0,
            1195.0,
            200.0,
            70.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            -1.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-93",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            480.0,
            1175.0,
            200.0,
            20.0
          ],
          "text": "sad"
        }
      },
      {
        "box": {
          "id": "obj-94",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            480.0,
            1195.0,
            200.0,
            70.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            -1.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-95",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            710.0,
            1175.0,
            200.0,
            20.0
          ],
          "text": "tender"
        }
      },
      {
        "box": {
          "id": "obj-96",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            710.0,
            1195.0,
            200.0,
            70.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 7,
          "setminmax": [
            -1.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-97",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            20.0,
            1290.0,
            300.0,
            20.0
          ],
          "text": "/mer/explain/bias (8, EMOTIONS order)"
        }
      },
      {
        "box": {
          "id": "obj-98",
          "maxclass": "multislider",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            20.0,
            1310.0,
            240.0,
            70.0
          ],
          "outlettype": [
            "",
            ""
          ],
          "size": 8,
          "setminmax": [
            -1.0,
            1.0
          ],
          "setstyle": 1,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-99",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            300.0,
            1310.0,
            280.0,
            20.0
          ],
          "text": "anything unrouted (other prefixes) ends here:"
        }
      },
      {
        "box": {
          "id": "obj-100",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            300.0,
            1335.0,
            173.0,
            22.0
          ],
          "outlettype": [],
          "text": "print mer-live-unrouted"
        }
      },
      {
        "box": {
          "id": "obj-101",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            980.0,
            440.0,
            330.0,
            50.0
          ],
          "text": "SOUND: tension -> lowpass cutoff (200 Hz - 6 kHz), energy -> loudness of a sawtooth drone. Switch audio on with the speaker."
        }
      },
      {
        "box": {
          "id": "obj-102",
          "maxclass": "newobj",
          "numinlets": 0,
          "numoutlets": 1,
          "patching_rect": [
            980.0,
            500.0,
            103.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "r mer-tension"
        }
      },
      {
        "box": {
          "id": "obj-103",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            980.0,
            530.0,
            194.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "expr 200. * pow(30.\\, $f1)"
        }
      },
      {
        "box": {
          "id": "obj-104",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            980.0,
            560.0,
            89.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "pack 0. 250"
        }
      },
      {
        "box": {
          "id": "obj-105",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 2,
          "patching_rect": [
            980.0,
            590.0,
            47.0,
            22.0
          ],
          "outlettype": [
            "signal",
            "bang"
          ],
          "text": "line~"
        }
      },
      {
        "box": {
          "id": "obj-106",
          "maxclass": "newobj",
          "numinlets": 0,
          "numoutlets": 1,
          "patching_rect": [
            1150.0,
            500.0,
            96.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "r mer-energy"
        }
      },
      {
        "box": {
          "id": "obj-107",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            1150.0,
            560.0,
            89.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "pack 0. 250"
        }
      },
      {
        "box": {
          "id": "obj-108",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 2,
          "patching_rect": [
            1150.0,
            590.0,
            47.0,
            22.0
          ],
          "outlettype": [
            "signal",
            "bang"
          ],
          "text": "line~"
        }
      },
      {
        "box": {
          "id": "obj-109",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            900.0,
            590.0,
            68.0,
            22.0
          ],
          "outlettype": [
            "signal"
          ],
          "text": "saw~ 110"
        }
      },
      {
        "box": {
          "id": "obj-110",
          "maxclass": "newobj",
          "numinlets": 3,
          "numoutlets": 1,
          "patching_rect": [
            900.0,
            630.0,
            117.0,
            22.0
          ],
          "outlettype": [
            "signal"
          ],
          "text": "lores~ 1000 0.5"
        }
      },
      {
        "box": {
          "id": "obj-111",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            900.0,
            660.0,
            40.0,
            22.0
          ],
          "outlettype": [
            "signal"
          ],
          "text": "*~"
        }
      },
      {
        "box": {
          "id": "obj-112",
          "maxclass": "newobj",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            900.0,
            690.0,
            54.0,
            22.0
          ],
          "outlettype": [
            "signal"
          ],
          "text": "*~ 0.2"
        }
      },
      {
        "box": {
          "id": "obj-113",
          "maxclass": "ezdac~",
          "numinlets": 2,
          "numoutlets": 0,
          "patching_rect": [
            900.0,
            720.0,
            45.0,
            45.0
          ],
          "outlettype": []
        }
      },
      {
        "box": {
          "id": "obj-114",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            1060.0,
            530.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-115",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            980.0,
            800.0,
            330.0,
            66.0
          ],
          "text": "CONTROL: adjust the running daemon (its control port, default 127.0.0.1:9001). Replies (/mer/pong, /mer/config/*) go back to the sending port; [udpsend] does not read them, use oscdump or Pd's [pd control] to see them."
        }
      },
      {
        "box": {
          "id": "obj-116",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            980.0,
            875.0,
            93.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "/mer/ping 1"
        }
      },
      {
        "box": {
          "id": "obj-117",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            1070.0,
            875.0,
            86.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "/mer/query"
        }
      },
      {
        "box": {
          "id": "obj-118",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            1160.0,
            875.0,
            86.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "/mer/reset"
        }
      },
      {
        "box": {
          "id": "obj-119",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            980.0,
            910.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-120",
          "maxclass": "flonum",
          "numinlets": 1,
          "numoutlets": 2,
          "patching_rect": [
            1070.0,
            910.0,
            60.0,
            22.0
          ],
          "outlettype": [
            "",
            "bang"
          ],
          "format": 6,
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-121",
          "maxclass": "toggle",
          "numinlets": 1,
          "numoutlets": 1,
          "patching_rect": [
            1160.0,
            910.0,
            22.0,
            22.0
          ],
          "outlettype": [
            "int"
          ],
          "parameter_enable": 0
        }
      },
      {
        "box": {
          "id": "obj-122",
          "maxclass": "comment",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            980.0,
            935.0,
            240.0,
            20.0
          ],
          "text": "smoothing s  rate /s     mute"
        }
      },
      {
        "box": {
          "id": "obj-123",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            980.0,
            960.0,
            135.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "/mer/smoothing $1"
        }
      },
      {
        "box": {
          "id": "obj-124",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            1110.0,
            960.0,
            100.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "/mer/rate $1"
        }
      },
      {
        "box": {
          "id": "obj-125",
          "maxclass": "message",
          "numinlets": 2,
          "numoutlets": 1,
          "patching_rect": [
            1210.0,
            960.0,
            100.0,
            22.0
          ],
          "outlettype": [
            ""
          ],
          "text": "/mer/mute $1"
        }
      },
      {
        "box": {
          "id": "obj-126",
          "maxclass": "newobj",
          "numinlets": 1,
          "numoutlets": 0,
          "patching_rect": [
            980.0,
            1000.0,
            166.0,
            22.0
          ],
          "outlettype": [],
          "text": "udpsend 127.0.0.1 9001"
        }
      }
    ],
    "lines": [
      {
        "patchline": {
          "destination": [
            "obj-4",
            0
          ],
          "source": [
            "obj-3",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-5",
            0
          ],
          "source": [
            "obj-4",
            6
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-6",
            0
          ],
          "source": [
            "obj-5",
            8
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-7",
            0
          ],
          "source": [
            "obj-6",
            7
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-10",
            0
          ],
          "source": [
            "obj-4",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-11",
            0
          ],
          "source": [
            "obj-10",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-12",
            0
          ],
          "source": [
            "obj-11",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-13",
            0
          ],
          "source": [
            "obj-10",
            1
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-14",
            0
          ],
          "source": [
            "obj-10",
            2
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-15",
            0
          ],
          "source": [
            "obj-10",
            3
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-18",
            0
          ],
          "source": [
            "obj-4",
            1
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-20",
            0
          ],
          "source": [
            "obj-4",
            2
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-22",
            0
          ],
          "source": [
            "obj-4",
            4
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-24",
            0
          ],
          "source": [
            "obj-4",
            5
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-26",
            0
          ],
          "source": [
            "obj-5",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-27",
            0
          ],
          "source": [
            "obj-5",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-28",
            0
          ],
          "source": [
            "obj-5",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-30",
            0
          ],
          "source": [
            "obj-5",
            1
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-31",
            0
          ],
          "source": [
            "obj-5",
            1
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-32",
            0
          ],
          "source": [
            "obj-5",
            1
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-34",
            0
          ],
          "source": [
            "obj-5",
            2
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-35",
            0
          ],
          "source": [
            "obj-5",
            2
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-36",
            0
          ],
          "source": [
            "obj-5",
            2
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-38",
            0
          ],
          "source": [
            "obj-5",
            3
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-39",
            0
          ],
          "source": [
            "obj-5",
            3
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-40",
            0
          ],
          "source": [
            "obj-5",
            3
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-42",
            0
          ],
          "source": [
            "obj-5",
            4
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-43",
            0
          ],
          "source": [
            "obj-5",
            4
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-44",
            0
          ],
          "source": [
            "obj-5",
            4
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-46",
            0
          ],
          "source": [
            "obj-5",
            5
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-47",
            0
          ],
          "source": [
            "obj-5",
            5
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-48",
            0
          ],
          "source": [
            "obj-5",
            5
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-50",
            0
          ],
          "source": [
            "obj-5",
            6
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-51",
            0
          ],
          "source": [
            "obj-5",
            6
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-52",
            0
          ],
          "source": [
            "obj-5",
            6
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-54",
            0
          ],
          "source": [
            "obj-5",
            7
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-55",
            0
          ],
          "source": [
            "obj-5",
            7
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-56",
            0
          ],
          "source": [
            "obj-5",
            7
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-59",
            0
          ],
          "source": [
            "obj-6",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-60",
            0
          ],
          "source": [
            "obj-6",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-62",
            0
          ],
          "source": [
            "obj-6",
            1
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-63",
            0
          ],
          "source": [
            "obj-6",
            1
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-65",
            0
          ],
          "source": [
            "obj-6",
            2
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-66",
            0
          ],
          "source": [
            "obj-6",
            2
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-68",
            0
          ],
          "source": [
            "obj-6",
            3
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-69",
            0
          ],
          "source": [
            "obj-6",
            3
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-71",
            0
          ],
          "source": [
            "obj-6",
            4
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-72",
            0
          ],
          "source": [
            "obj-6",
            4
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-74",
            0
          ],
          "source": [
            "obj-6",
            5
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-75",
            0
          ],
          "source": [
            "obj-6",
            5
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-77",
            0
          ],
          "source": [
            "obj-6",
            6
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-78",
            0
          ],
          "source": [
            "obj-6",
            6
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-82",
            0
          ],
          "source": [
            "obj-7",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-84",
            0
          ],
          "source": [
            "obj-7",
            1
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-86",
            0
          ],
          "source": [
            "obj-7",
            2
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-88",
            0
          ],
          "source": [
            "obj-7",
            3
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-90",
            0
          ],
          "source": [
            "obj-7",
            4
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-92",
            0
          ],
          "source": [
            "obj-7",
            5
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-94",
            0
          ],
          "source": [
            "obj-7",
            6
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-96",
            0
          ],
          "source": [
            "obj-7",
            7
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-98",
            0
          ],
          "source": [
            "obj-4",
            3
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-100",
            0
          ],
          "source": [
            "obj-7",
            8
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-103",
            0
          ],
          "source": [
            "obj-102",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-114",
            0
          ],
          "source": [
            "obj-103",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-104",
            0
          ],
          "source": [
            "obj-103",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-105",
            0
          ],
          "source": [
            "obj-104",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-110",
            1
          ],
          "source": [
            "obj-105",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-107",
            0
          ],
          "source": [
            "obj-106",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-108",
            0
          ],
          "source": [
            "obj-107",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-111",
            1
          ],
          "source": [
            "obj-108",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-110",
            0
          ],
          "source": [
            "obj-109",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-111",
            0
          ],
          "source": [
            "obj-110",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-112",
            0
          ],
          "source": [
            "obj-111",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-113",
            0
          ],
          "source": [
            "obj-112",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-113",
            1
          ],
          "source": [
            "obj-112",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-126",
            0
          ],
          "source": [
            "obj-116",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-126",
            0
          ],
          "source": [
            "obj-117",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-126",
            0
          ],
          "source": [
            "obj-118",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-123",
            0
          ],
          "source": [
            "obj-119",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-124",
            0
          ],
          "source": [
            "obj-120",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-125",
            0
          ],
          "source": [
            "obj-121",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-126",
            0
          ],
          "source": [
            "obj-123",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-126",
            0
          ],
          "source": [
            "obj-124",
            0
          ]
        }
      },
      {
        "patchline": {
          "destination": [
            "obj-126",
            0
          ],
          "source": [
            "obj-125",
            0
          ]
        }
      }
    ],
    "dependency_cache": [],
    "autosave": 0
  }
}
