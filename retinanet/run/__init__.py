"""Running the reference RetinaNet: training, evaluation and prediction, one module per job.

====================  =====================================================================
``recipes``           ``TrainConfig``, the paper's and the CPU recipe, optimizer, detector
``run_dir``           the run directory: config, checkpoints, weights, history; ``load_trained_model``
``progress``          progress bar, history rows, TensorBoard scalars, loss curves
``distribute``        data parallelism over devices, processes and machines
``loop``              the training loop: ``train``, ``train_detector``
``evaluate``          COCO mAP of a trained run (pycocotools)
``predict``           detections of a trained run drawn on image files
====================  =====================================================================

Nothing is imported here: importing one module loads only what that module needs (``retinanet.run.predict``
imports Keras only when it loads a run).
"""
